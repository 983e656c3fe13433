package vtep

import "testing"

func TestRateLimiter(t *testing.T) {
	var l rateLimiter
	const sec = int64(1e9)
	now := 5 * sec
	granted := 0
	for i := 0; i < 100; i++ {
		if l.allow(now, 10) {
			granted++
		}
	}
	if granted != 10 {
		t.Errorf("burst at one instant: %d granted, want a second's worth, 10", granted)
	}
	// Half a second later, half a second's worth more.
	granted = 0
	for i := 0; i < 100; i++ {
		if l.allow(now+sec/2, 10) {
			granted++
		}
	}
	if granted != 5 {
		t.Errorf("after 0.5s: %d granted, want 5", granted)
	}
	// A steady 10/s over 10 s is all granted; 20/s is halved.
	var steady, twice rateLimiter
	okSteady, okTwice := 0, 0
	for i := int64(0); i < 200; i++ {
		at := 100*sec + i*sec/20
		if i%2 == 0 && steady.allow(at, 10) {
			okSteady++
		}
		if twice.allow(at, 10) {
			okTwice++
		}
	}
	if okSteady != 100 {
		t.Errorf("steady 10/s: %d of 100 granted", okSteady)
	}
	if okTwice < 105 || okTwice > 115 {
		t.Errorf("20/s against 10/s for 10s: %d granted, want about 110 (100 + a second's burst)", okTwice)
	}
	if !l.allow(now, 0) {
		t.Error("rate 0 must mean no limit")
	}
}
