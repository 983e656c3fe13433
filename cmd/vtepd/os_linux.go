package main

// linuxOnly is set where vtepd cannot run (os_other.go).
const linuxOnly = false
