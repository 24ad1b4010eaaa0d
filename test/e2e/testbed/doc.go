// Package testbed builds a throw-away pod → node → world topology in network
// namespaces it creates, for masqd's end-to-end tests and demo.
//
// The pod namespace sends connections through the node namespace (where the
// caller runs masqd) to addresses held by the world namespace, whose
// receiver answers with the source address it saw: the node's address means
// the connection was masqueraded, the pod's means it was not.
//
// Every address, route and sysctl the bed sets lives inside the namespaces
// it created; no packet leaves them. Close removes them all. The package
// never touches the caller's own namespace, and removes stale namespaces
// only when their name carries its prefix and the PID of a process that is
// gone.
package testbed
