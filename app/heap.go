package app

import (
	"runtime"
	"runtime/debug"
)

// settleHeap collects what starting up left behind before the server takes load.
// The garbage collector sets its next target from the heap it found live at its
// last collection; without this, that collection is one made while starting (goose
// parsing the migrations into pooled multi-megabyte buffers, the schema parsed), so
// the heap may grow to twice that before the first collection under load. Two
// collections, because a sync.Pool's contents survive one (in its victim cache);
// FreeOSMemory's also hands the freed pages back to the system. Called once, never
// on a request's path.
func settleHeap() {
	runtime.GC()
	debug.FreeOSMemory()
}
