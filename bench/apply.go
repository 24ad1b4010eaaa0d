package main

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
)

// tool names, as the report prints them.
const (
	toolMasqd     = "masqd --once"
	toolNft       = "nft -f"
	toolIptNft    = "iptables-nft-restore"
	toolIptLegacy = "iptables-legacy-restore"
)

// applyRow is measurement 1 (and the --once half of 6) at one N.
type applyRow struct {
	N int
	// Wall, CPU (ms) and peak RSS (MiB) per tool, by tool name.
	Wall, CPU, RSS map[string]stat
	// Ratios of masqd's wall time to each other tool's, per repetition.
	Ratio map[string]stat
	// Verified says the kernel held all N entries after each tool's
	// first run (checked only up to plan.verifyMax).
	Verified bool
	Files    applyFiles
}

// applyFiles are the inputs of one N.
type applyFiles struct {
	Config, Nft, Ipt string // Ipt includes POSTROUTING's jump
	IptCycle         string // one resync's restore input: no jump
	Ruleset          string // masqd render's text
}

// prepareApply writes the inputs for n CIDRs.
func (b *bench) prepareApply(ctx context.Context, n int) (applyFiles, error) {
	list := cidrs(n)
	var f applyFiles
	var err error
	name := func(ext string) string { return "n" + strconv.Itoa(n) + ext }
	if f.Config, err = writeFile(b.dir, name(".json"), configText(formatJSON, list, "60s")); err != nil {
		return f, err
	}
	out, err := output(ctx, nil, b.bin, "render", "--config", f.Config)
	if err != nil {
		return f, err
	}
	f.Ruleset = string(out)
	if f.Nft, err = writeFile(b.dir, name(".nft"), f.Ruleset); err != nil {
		return f, err
	}
	if f.Ipt, err = writeFile(b.dir, name(".iptables"), iptablesText(list, true)); err != nil {
		return f, err
	}
	f.IptCycle, err = writeFile(b.dir, name("-cycle.iptables"), iptablesText(list, false))
	return f, err
}

// applyTool loads one N's ruleset into an empty namespace.
type applyTool struct {
	name string
	run  func(ctx context.Context, ns *netns, exec runner) (usage, error)
	// count returns how many of the N entries the kernel holds.
	count func(ctx context.Context, ns *netns) (int, error)
}

func (b *bench) applyTools(f applyFiles) []applyTool {
	tools := []applyTool{
		{toolMasqd, func(ctx context.Context, ns *netns, exec runner) (usage, error) {
			return exec(ctx, nil, "", b.bin, "--once", "--config", f.Config, "--netns", ns.Path())
		}, countSetElements},
		{toolNft, func(ctx context.Context, ns *netns, exec runner) (usage, error) {
			return exec(ctx, ns, "", "nft", "-f", f.Nft)
		}, countSetElements},
		{toolIptNft, func(ctx context.Context, ns *netns, exec runner) (usage, error) {
			return exec(ctx, ns, f.Ipt, "iptables-nft-restore", "--noflush")
		}, countRules("iptables-nft-save")},
	}
	if b.legacy {
		tools = append(tools, applyTool{toolIptLegacy, func(ctx context.Context, ns *netns, exec runner) (usage, error) {
			return exec(ctx, ns, f.Ipt, "iptables-legacy-restore", "--noflush")
		}, countRules("iptables-legacy-save")})
	}
	return tools
}

// countSetElements counts the /28 prefixes in masqd's IPv4 set.
func countSetElements(ctx context.Context, ns *netns) (int, error) {
	out, err := output(ctx, ns, "nft", "list", "set", "inet", "masqd", "nomasq-v4")
	if err != nil {
		return 0, err
	}
	return bytes.Count(out, []byte("/28")), nil
}

// countRules counts the RETURN rules for /28 prefixes in the nat table.
func countRules(save string) func(ctx context.Context, ns *netns) (int, error) {
	return func(ctx context.Context, ns *netns) (int, error) {
		out, err := output(ctx, ns, save, "-t", "nat")
		if err != nil {
			return 0, err
		}
		n := 0
		for line := range bytes.SplitSeq(out, []byte("\n")) {
			if bytes.Contains(line, []byte("/28")) && bytes.Contains(line, []byte("-j RETURN")) {
				n++
			}
		}
		return n, nil
	}
}

// measureApply is measurement 1: each tool loads N CIDRs into a fresh
// namespace, whole process timed; the tools take turns within a repetition
// so that every ratio pairs runs made moments apart.
func (b *bench) measureApply(ctx context.Context) error {
	for _, n := range b.plan.sizes {
		f, err := b.prepareApply(ctx, n)
		if err != nil {
			return err
		}
		b.files[n] = f
		tools := b.applyTools(f)
		wall := map[string][]float64{}
		cpu := map[string][]float64{}
		rss := map[string][]float64{}
		verify := n <= b.plan.verifyMax
		for rep := range b.plan.reps {
			for i := range tools {
				t := tools[(i+rep)%len(tools)]
				u, err := b.applyOnce(ctx, t, n, verify && rep == 0, runTimed)
				if err != nil {
					return fmt.Errorf("%s, N=%d: %w", t.name, n, err)
				}
				wall[t.name] = append(wall[t.name], ms(u.Wall))
				cpu[t.name] = append(cpu[t.name], ms(u.CPU))
			}
		}
		// Peak RSS from runs of their own (runPeak says why).
		for _, t := range tools {
			u, err := b.applyOnce(ctx, t, n, false, runPeak)
			if err != nil {
				return fmt.Errorf("%s, N=%d, peak RSS: %w", t.name, n, err)
			}
			rss[t.name] = append(rss[t.name], float64(u.MaxRSSKiB)/1024)
		}
		row := applyRow{N: n, Wall: map[string]stat{}, CPU: map[string]stat{}, RSS: map[string]stat{}, Ratio: map[string]stat{}, Verified: verify, Files: f}
		for _, t := range tools {
			row.Wall[t.name] = summarize(wall[t.name])
			row.CPU[t.name] = summarize(cpu[t.name])
			row.RSS[t.name] = summarize(rss[t.name])
			if t.name != toolMasqd {
				row.Ratio[t.name] = summarize(ratios(wall[toolMasqd], wall[t.name]))
			}
		}
		b.res.Apply = append(b.res.Apply, row)
		b.progress("apply N=%d: masqd %.1f ms, nft -f %.1f ms, iptables-nft %.1f ms", n,
			row.Wall[toolMasqd].Med, row.Wall[toolNft].Med, row.Wall[toolIptNft].Med)
	}
	return nil
}

func (b *bench) applyOnce(ctx context.Context, t applyTool, n int, verify bool, exec runner) (usage, error) {
	ns, err := b.ns.Add(ctx)
	if err != nil {
		return usage{}, err
	}
	defer ns.Close()
	u, err := t.run(ctx, ns, exec)
	if err != nil || !verify {
		return u, err
	}
	got, err := t.count(ctx, ns)
	if err != nil {
		return u, fmt.Errorf("verify: %w", err)
	}
	if got != n {
		return u, fmt.Errorf("verify: the kernel holds %d of %d entries", got, n)
	}
	return u, nil
}

// probeLegacy reports whether iptables-legacy works on this kernel, by
// loading a one-rule nat table into a throw-away namespace.
func (b *bench) probeLegacy(ctx context.Context) error {
	ns, err := b.ns.Add(ctx)
	if err != nil {
		return err
	}
	defer ns.Close()
	p, err := writeFile(b.dir, "probe.iptables", iptablesText(nil, true))
	if err != nil {
		return err
	}
	_, err = runTimed(ctx, ns, p, "iptables-legacy-restore", "--noflush")
	return err
}
