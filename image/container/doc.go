// Package container runs masqd's image as the DaemonSet runs it, in a real
// OCI runtime: the image (make image's OCI layout, or one built from the
// binary under test) is unpacked with umoci into a bundle, and runc runs it
// with the container spec read from ../../deploy/daemonset.yaml itself —
// args, env (GOMEMLIMIT from the memory limit through the downward API),
// capabilities, runAsUser, allowPrivilegeEscalation,
// readOnlyRootFilesystem, the memory limit, the config volume's mount
// path and item, the probes and terminationGracePeriodSeconds. Its network
// namespace is the node namespace of a test/e2e/testbed bed, as a
// hostNetwork pod's is the node's, and real connections from the bed's pod
// show what it programmed.
//
// Where this differs from a kubelet with a CRI runtime: the runtime's
// defaults are umoci's (its mounts and masked paths; fresh PID, IPC, UTS
// and mount namespaces), kubelet's /etc/hosts, /etc/resolv.conf and
// termination-log mounts are absent, and no seccomp profile is applied
// (containerd's RuntimeDefault profile is not available to runc alone).
//
// It holds tests only, they need root, runc and umoci
// (apt-get install -y runc umoci), and they skip with the reason otherwise.
// Every container gets an id of its own (masqd-e2e-PID-TAG-N, under the
// runc root /run/masqd-e2e-runc) and is deleted when its test ends, failed
// or not; a later run deletes those of runs that were killed.
package container
