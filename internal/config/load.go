package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Load reads the config at path, a file or a directory.
//
// A missing path means the defaults, with no Files. A directory's regular
// files (symlinks followed) whose names do not start with "." are read in
// name order and combined: CIDR lists joined, booleans ORed, the shortest
// resyncInterval and the smallest non-zero cidrLimit win, the limit applying
// to the joined list. That reads a ConfigMap mount's keys once each and skips
// its "..data" links. A directory without such files means the defaults.
//
// Invalid content yields an *Error listing the problems of every file.
// A file that cannot be read yields an error naming it.
func Load(path string, opts Options) (*Config, error) {
	info, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return Default(opts), nil
	case err != nil:
		return nil, readError(path, err)
	case !info.IsDir():
		data, err := readFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			return Default(opts), nil
		}
		if err != nil {
			return nil, err
		}
		return Parse(path, data, opts)
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, readError(path, err)
	}
	var (
		results  []*fileResult
		problems []Problem
	)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		file := filepath.Join(path, e.Name())
		data, err := readFile(file)
		if errors.Is(err, fs.ErrNotExist) {
			// Removed since the listing, or a dangling link mid-swap.
			continue
		}
		if err != nil {
			return nil, err
		}
		r, ps := parseFile(file, data, opts)
		results = append(results, r)
		problems = append(problems, ps...)
	}
	cfg, more := merge(results, opts)
	return result(cfg, append(problems, more...), opts)
}

// StdinName names standard input in Config.Files and in problems.
const StdinName = "<stdin>"

// StdinPath is the config path that stands for standard input, as in
// `masqd check --config -`.
const StdinPath = "-"

// LoadOrRead is Load of path, or Read of stdin when path is StdinPath.
func LoadOrRead(path string, stdin io.Reader, opts Options) (*Config, error) {
	if path == StdinPath {
		return Read(StdinName, stdin, opts)
	}
	return Load(path, opts)
}

// DisplayName names the config at path in messages: StdinName for
// StdinPath, otherwise path.
func DisplayName(path string) string {
	if path == StdinPath {
		return StdinName
	}
	return path
}

// Read reads one config from r, such as standard input, to its end, and
// parses it as Parse does; name stands for the file. It reads at most
// MaxFileSize bytes.
func Read(name string, r io.Reader, opts Options) (*Config, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read config %s: %w", name, err)
	}
	if len(data) > MaxFileSize {
		return nil, tooLarge(name, int64(len(data)))
	}
	return Parse(name, data, opts)
}

// readFile reads a regular file of at most MaxFileSize bytes. It opens
// without blocking, so a FIFO in a config directory cannot hang the agent,
// and never reads past the cap, even from a file that grows meanwhile.
func readFile(name string) ([]byte, error) {
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, readError(name, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, readError(name, err)
	}
	if !info.Mode().IsRegular() {
		return nil, readError(name, ErrNotRegular)
	}
	if info.Size() > MaxFileSize {
		return nil, tooLarge(name, info.Size())
	}
	buf := bytes.NewBuffer(make([]byte, 0, info.Size()+bytes.MinRead))
	if _, err := buf.ReadFrom(io.LimitReader(f, MaxFileSize+1)); err != nil {
		return nil, readError(name, err)
	}
	if buf.Len() > MaxFileSize {
		return nil, tooLarge(name, int64(buf.Len()))
	}
	return buf.Bytes(), nil
}

// readError names the file that cannot be read and, for a denied
// permission, says how to grant it.
func readError(name string, err error) error {
	if pe := new(fs.PathError); errors.As(err, &pe) && pe.Path == name {
		err = pe.Err // the path is said once, first
	}
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("read config %s: %w (fix: let masqd's user read it and every directory above it: "+
			"chmod a+r, or set the ConfigMap volume's defaultMode, such as 0444; check SELinux or AppArmor labels too)", name, err)
	}
	return fmt.Errorf("read config %s: %w", name, err)
}

// tooLarge is the error for a file of size bytes, over the cap: it was not
// read.
func tooLarge(name string, size int64) error {
	return fmt.Errorf("read config %s: %w: it has at least %d bytes (fix: a config is a few KiB; check that the path names "+
		"the config, or split a long nonMasqueradeCIDRs list into files of a directory)", name, ErrTooLarge, size)
}
