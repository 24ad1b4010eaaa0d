// Command codesize fails when the code outgrows the sizes issue 12 set:
// a function (or method) over 80 lines, counted from its func keyword to
// its closing brace, anywhere in the modules named on the command line,
// tests included; or the non-test Go files of cmd/masqd at 700 lines or
// more together, since cmd/masqd should only parse flags, log, serve HTTP
// and print what internal packages answer.
//
// hack/verify.sh runs it over the modules it vets. A directory with a
// go.mod of its own is another module and is skipped unless named. It
// reads files only; it must not change them.
package main
