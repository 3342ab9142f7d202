package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// A hand-rolled flag parser with pflag's (and so etcdctl's) syntax: flags
// may appear anywhere among the arguments, "--name value", "--name=value",
// "-x value", "-xvalue" and "-x=value" are accepted, a boolean flag takes
// no separate value ("--name=false" sets it false), and "--" ends the
// flags. Error messages are pflag's.

type flagValue interface {
	Set(string) error
	String() string
}

type boolFlag struct{ p *bool }

func (f boolFlag) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	*f.p = v
	return nil
}
func (f boolFlag) String() string { return strconv.FormatBool(*f.p) }

type stringFlag struct{ p *string }

func (f stringFlag) Set(s string) error { *f.p = s; return nil }
func (f stringFlag) String() string     { return *f.p }

type int64Flag struct{ p *int64 }

func (f int64Flag) Set(s string) error {
	v, err := strconv.ParseInt(s, 0, 64)
	if err != nil {
		return err
	}
	*f.p = v
	return nil
}
func (f int64Flag) String() string { return strconv.FormatInt(*f.p, 10) }

type durationFlag struct{ p *time.Duration }

func (f durationFlag) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*f.p = v
	return nil
}
func (f durationFlag) String() string { return f.p.String() }

// stringSliceFlag takes comma-separated values; the first Set replaces
// the default, later ones append.
type stringSliceFlag struct {
	p       *[]string
	changed *bool
}

func (f stringSliceFlag) Set(s string) error {
	var vs []string
	for v := range strings.SplitSeq(s, ",") {
		vs = append(vs, strings.TrimSpace(v))
	}
	if !*f.changed {
		*f.p, *f.changed = vs, true
		return nil
	}
	*f.p = append(*f.p, vs...)
	return nil
}
func (f stringSliceFlag) String() string { return "[" + strings.Join(*f.p, ",") + "]" }

type flagDef struct {
	name, short, usage string
	value              flagValue
	isBool             bool
}

// flagSet is a set of flags for one command.
type flagSet struct {
	defs []*flagDef
	help bool
}

func newFlagSet() *flagSet {
	fs := &flagSet{}
	fs.Bool(&fs.help, "help", "h", "help for this command")
	return fs
}

func (fs *flagSet) add(d *flagDef) { fs.defs = append(fs.defs, d) }

func (fs *flagSet) Bool(p *bool, name, short, usage string) {
	fs.add(&flagDef{name: name, short: short, usage: usage, value: boolFlag{p}, isBool: true})
}

func (fs *flagSet) String(p *string, name, short, usage string) {
	fs.add(&flagDef{name: name, short: short, usage: usage, value: stringFlag{p}})
}

func (fs *flagSet) Int64(p *int64, name, usage string) {
	fs.add(&flagDef{name: name, usage: usage, value: int64Flag{p}})
}

func (fs *flagSet) Duration(p *time.Duration, name, usage string) {
	fs.add(&flagDef{name: name, usage: usage, value: durationFlag{p}})
}

func (fs *flagSet) StringSlice(p *[]string, name, usage string) {
	fs.add(&flagDef{name: name, usage: usage, value: stringSliceFlag{p: p, changed: new(bool)}})
}

func (fs *flagSet) lookup(name string) *flagDef {
	for _, d := range fs.defs {
		if d.name == name {
			return d
		}
	}
	return nil
}

func (fs *flagSet) lookupShort(short string) *flagDef {
	for _, d := range fs.defs {
		if d.short != "" && d.short == short {
			return d
		}
	}
	return nil
}

// parse sets the flags found in args and returns the other arguments.
func (fs *flagSet) parse(args []string) ([]string, error) {
	var positional []string
	for i := 0; i < len(args); i++ {
		arg := args[i]
		switch {
		case arg == "--":
			return append(positional, args[i+1:]...), nil
		case strings.HasPrefix(arg, "--"):
			name, value, hasValue := strings.Cut(arg[2:], "=")
			d := fs.lookup(name)
			if d == nil {
				return nil, fmt.Errorf("unknown flag: --%s", name)
			}
			if !hasValue && !d.isBool {
				if i+1 >= len(args) {
					return nil, fmt.Errorf("flag needs an argument: --%s", name)
				}
				i++
				value = args[i]
			}
			if err := fs.set(d, value, hasValue); err != nil {
				return nil, err
			}
		case len(arg) > 1 && arg[0] == '-':
			rest, err := fs.parseShorts(arg[1:], args[i+1:])
			if err != nil {
				return nil, err
			}
			i += rest
		default:
			positional = append(positional, arg)
		}
	}
	return positional, nil
}

// parseShorts parses a group of shorthand flags (the text after "-") and
// returns how many of the following arguments it consumed.
func (fs *flagSet) parseShorts(shorts string, following []string) (int, error) {
	for len(shorts) > 0 {
		c := shorts[:1]
		shorts = shorts[1:]
		d := fs.lookupShort(c)
		if d == nil {
			return 0, fmt.Errorf("unknown shorthand flag: '%s' in -%s", c, c+shorts)
		}
		if d.isBool {
			value, hasValue := "true", false
			if strings.HasPrefix(shorts, "=") {
				value, hasValue, shorts = shorts[1:], true, ""
			}
			if err := fs.set(d, value, hasValue); err != nil {
				return 0, err
			}
			continue
		}
		value := strings.TrimPrefix(shorts, "=")
		consumed := 0
		if shorts == "" {
			if len(following) == 0 {
				return 0, fmt.Errorf("flag needs an argument: '%s' in -%s", c, c)
			}
			value, consumed = following[0], 1
		}
		return consumed, fs.set(d, value, true)
	}
	return 0, nil
}

func (fs *flagSet) set(d *flagDef, value string, explicit bool) error {
	if d.isBool && !explicit {
		value = "true"
	}
	if err := d.value.Set(value); err != nil {
		return fmt.Errorf("invalid argument %q for %q flag: %v", value, flagName(d), err)
	}
	return nil
}

func flagName(d *flagDef) string {
	if d.short != "" {
		return "-" + d.short + ", --" + d.name
	}
	return "--" + d.name
}

// usage lists the flags, one per line.
func (fs *flagSet) usage() string {
	var b strings.Builder
	for _, d := range fs.defs {
		name := "    --" + d.name
		if d.short != "" {
			name = "-" + d.short + ", --" + d.name
		}
		if !d.isBool {
			name += "=" + defaultText(d)
		}
		fmt.Fprintf(&b, "  %-34s %s\n", name, d.usage)
	}
	return b.String()
}

func defaultText(d *flagDef) string {
	if _, ok := d.value.(stringFlag); ok {
		return strconv.Quote(d.value.String())
	}
	return d.value.String()
}
