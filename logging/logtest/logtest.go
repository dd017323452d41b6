// Package logtest helps tests read what the code under test logged.
package logtest

import (
	"bytes"
	"sync"
)

// Buffer is a log sink that is safe to read while other goroutines (HTTP handlers,
// workers) write to it. The zero value is ready to use.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p whole: concurrent writes never interleave within a record.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String is everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
