//go:build !linux

package frrtest

import "syscall"

func procAttr() *syscall.SysProcAttr { return nil }
