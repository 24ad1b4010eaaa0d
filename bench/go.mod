module github.com/masqd/masqd/bench

go 1.26.0

// The harness measures bin/masqd from the outside and imports nothing of
// masqd (Go forbids importing its internal packages from another module);
// the replace keeps a future shared public package on the local tree.
replace github.com/masqd/masqd => ../

require golang.org/x/sys v0.50.0
