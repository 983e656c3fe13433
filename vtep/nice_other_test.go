//go:build !linux

package vtep

func threadNice() (int, bool) { return 0, false }
