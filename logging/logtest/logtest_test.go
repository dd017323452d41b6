package logtest

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestConcurrentWritesKeepEveryRecordWhole(t *testing.T) {
	t.Parallel()
	var b Buffer
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := fmt.Fprintf(&b, "record %02d of a writer\n", i)
			require.NoError(t, err)
			_ = b.String()
		}()
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	require.Len(t, lines, 50)
	for _, l := range lines {
		require.Regexp(t, `^record \d\d of a writer$`, l)
	}
}
