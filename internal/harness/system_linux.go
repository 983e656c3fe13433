package harness

import "golang.org/x/sys/unix"

// kernelRelease is uname -r; "" if uname fails.
func kernelRelease() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}
