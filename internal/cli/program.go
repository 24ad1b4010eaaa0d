package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
)

// Command is a program's default command (Name "") or one of its
// sub-commands, as the help lists it.
type Command struct {
	Name string
	// Usage lists {synopsis, what it does} lines for the help.
	Usage [][2]string
}

// Program is a command line of the form `NAME [COMMAND] [flags and
// arguments]`: the command comes first, its flags may come among its
// arguments (the default command takes none), `NAME help [COMMAND]` and -h print the help, and a wrong
// command line exits with 2.
type Program struct {
	Name string
	// Head and Tail are the help's text before and after the list of
	// commands; More are lines listed after the commands'.
	Head, Tail string
	More       [][2]string
	// Commands are listed in this order; the default command comes first.
	Commands []Command
	// FlagSet returns the flags of Commands[i], writing parse errors to
	// stderr. The help calls it too, to list them.
	FlagSet func(i int, stderr io.Writer) *flag.FlagSet
	// Compat are flag names PrintFlags lists apart.
	Compat []string
}

// Parsed is a command line that Parse read.
type Parsed struct {
	// Command is the index of the command in Program.Commands.
	Command int
	// Flags are its flags, parsed.
	Flags *flag.FlagSet
	// Args are its positional arguments.
	Args []string
}

// Parse reads args, the command line after the program's name. When it
// returns ok false, it has printed the help or what is wrong with args, and
// the program exits with code.
func (p *Program) Parse(args []string, stdout, stderr io.Writer) (_ Parsed, code int, ok bool) {
	name := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	if name == "help" {
		return Parsed{}, p.help(args, stdout, stderr), false
	}
	i := p.Lookup(name)
	if i < 0 {
		if name == "version" {
			fmt.Fprintf(stderr, "%s: there is no version command; run %s --version\n", p.Name, p.Name)
			return Parsed{}, 2, false
		}
		fmt.Fprintf(stderr, "%s: unknown command %q; the commands are %s\n", p.Name, name, p.Names())
		return Parsed{}, 2, false
	}
	fs := p.FlagSet(i, stderr)
	args, err := ParseInterleaved(fs, args)
	switch {
	case errors.Is(err, flag.ErrHelp) && i == 0:
		p.PrintUsage(stdout, -1) // NAME -h: every command
		return Parsed{}, 0, false
	case errors.Is(err, flag.ErrHelp):
		p.PrintUsage(stdout, i)
		return Parsed{}, 0, false
	case err != nil:
		fmt.Fprintf(stderr, "%s: run %q for the flags\n", p.Name, strings.TrimSpace(p.Name+" help "+name))
		return Parsed{}, 2, false
	case i == 0 && len(args) > 0 && p.Lookup(args[0]) > 0:
		fmt.Fprintf(stderr, "%s: the command comes before its flags: %s %s [flags]\n", p.Name, p.Name, args[0])
		return Parsed{}, 2, false
	case i == 0 && len(args) > 0:
		fmt.Fprintf(stderr, "%s: unexpected arguments %q; the commands are %s\n", p.Name, args, p.Names())
		return Parsed{}, 2, false
	}
	return Parsed{Command: i, Flags: fs, Args: args}, 0, true
}

// Lookup returns the index of the command named name, or -1.
func (p *Program) Lookup(name string) int {
	return slices.IndexFunc(p.Commands, func(c Command) bool { return c.Name == name })
}

// Names lists the sub-commands and help, for messages.
func (p *Program) Names() string {
	var names []string
	for _, c := range p.Commands[1:] {
		names = append(names, c.Name)
	}
	return strings.Join(append(names, "help"), ", ")
}

// help runs `NAME help [COMMAND]` and returns the exit code.
func (p *Program) help(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		p.PrintUsage(stdout, -1)
		return 0
	}
	if len(args) == 1 && args[0] == "help" {
		fmt.Fprintf(stdout, "Usage:\n  %-29s %s\n", p.Name+" help [COMMAND]", "print the help of every command, or of one")
		return 0
	}
	i := p.Lookup(args[0])
	if len(args) > 1 || i <= 0 {
		fmt.Fprintf(stderr, "%s: help takes one command's name (%s), or none for every command\n", p.Name, strings.TrimSuffix(p.Names(), ", help"))
		return 2
	}
	p.PrintUsage(stdout, i)
	return 0
}

// PrintUsage writes the help of every command (i < 0), with the default
// command's flags, or of Commands[i].
func (p *Program) PrintUsage(w io.Writer, i int) {
	line := func(u [2]string) { fmt.Fprintf(w, "  %-29s %s\n", u[0], u[1]) }
	if i < 0 {
		fmt.Fprint(w, p.Head)
		for _, c := range p.Commands {
			for _, u := range c.Usage {
				line(u)
			}
		}
		line([2]string{p.Name + " help [COMMAND]", "print this help, or one command's"})
		for _, u := range p.More {
			line(u)
		}
		fmt.Fprint(w, p.Tail)
		i = 0
	} else {
		fmt.Fprintln(w, "Usage:")
		for _, u := range p.Commands[i].Usage {
			line(u)
		}
	}
	PrintFlags(w, p.FlagSet(i, io.Discard), p.Compat)
}

// ExitError makes a program exit with Code, printing Err first unless it
// is nil.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// Version is what --version prints: "NAME VERSION (go1.x, linux/amd64)".
// A version of "dev" (not set at link time) gives way to the module
// version go install recorded, if any.
func Version(name, version string) string {
	if bi, ok := debug.ReadBuildInfo(); ok && version == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		version = bi.Main.Version
	}
	return fmt.Sprintf("%s %s (%s, %s/%s)", name, version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
