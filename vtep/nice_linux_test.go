package vtep

import (
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// threadNice is the calling thread's nice value.
func threadNice() (int, bool) {
	p, err := unix.Getpriority(unix.PRIO_PROCESS, 0)
	return 20 - p, err == nil
}

// setNice reaches every thread, those the runtime starts later included.
func TestSetNice(t *testing.T) {
	before, _ := threadNice()
	want := min(before+1, 19) // raising it needs no privilege
	t.Cleanup(func() { setNice(before) })
	if err := setNice(want); err != nil {
		t.Fatal(err)
	}
	got := make(chan int, 4)
	for range 4 {
		go func() {
			runtime.LockOSThread() // a thread of its own, maybe a new one
			n, _ := threadNice()
			got <- n
		}()
	}
	for range 4 {
		if n := <-got; n != want {
			t.Errorf("a thread has nice %d, want %d", n, want)
		}
	}
}
