// Command vtepctl shows and changes the state of a running vtepd over its
// admin socket, in the style of iproute2's `bridge fdb`:
//
//	vtepctl [-s SOCKET] [-j] fdb show [vni N]
//	vtepctl [-s SOCKET] fdb add MAC dst ADDR vni N
//	vtepctl [-s SOCKET] fdb del MAC vni N
//	vtepctl [-s SOCKET] [-j] stats
//	vtepctl [-s SOCKET] [-j] peers
//	vtepctl [-s SOCKET] reload
//
// It exits 0 on success, 1 when vtepd refused the command or could not be
// reached, and 2 on a usage error; nothing changes unless it exits 0.
//
// It speaks the protocol of package admin and links none of the engine:
// its imports are admin, fdb (to parse MACs) and the standard library.
package main
