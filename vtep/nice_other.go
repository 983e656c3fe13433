//go:build !linux

package vtep

// setNice does nothing where vtepd cannot run.
func setNice(int) error { return nil }
