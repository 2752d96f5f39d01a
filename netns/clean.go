package netns

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
)

// killNamespace SIGKILLs every process inside namespace ns.
func killNamespace(ctx context.Context, ns string) error {
	if !nsExists(ctx, ns) {
		return nil
	}
	out, err := exec.CommandContext(ctx, "ip", "netns", "pids", ns).Output()
	if err != nil {
		return nil // the namespace went away meanwhile
	}
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	return nil
}

func nsExists(ctx context.Context, ns string) bool {
	for _, n := range namespaces(ctx) {
		if n == ns {
			return true
		}
	}
	return false
}

func namespaces(ctx context.Context) []string {
	out, err := exec.CommandContext(ctx, "ip", "netns", "list").Output()
	if err != nil {
		return nil
	}
	var names []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) > 0 {
			names = append(names, f[0])
		}
	}
	return names
}

func linkExists(ctx context.Context, name string) bool {
	return exec.CommandContext(ctx, "ip", "link", "show", "dev", name).Run() == nil
}

func links(ctx context.Context) []string {
	out, err := exec.CommandContext(ctx, "ip", "-o", "link", "show").Output()
	if err != nil {
		return nil
	}
	var names []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		// "12: fgab12v0@if11: <...>"
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
		names = append(names, name)
	}
	return names
}

// Leftovers lists the namespaces and links of Floodgate runs (run "" for every run).
func Leftovers(ctx context.Context, run string) (nss, lks []string) {
	nsPrefix, linkPrefix := "fg-", "fg"
	if run != "" {
		nsPrefix, linkPrefix = "fg-"+run+"-", "fg"+run
	}
	for _, n := range namespaces(ctx) {
		if strings.HasPrefix(n, nsPrefix) {
			nss = append(nss, n)
		}
	}
	for _, l := range links(ctx) {
		if strings.HasPrefix(l, linkPrefix) && isOurLink(l) {
			lks = append(lks, l)
		}
	}
	return nss, lks
}

// isOurLink recognises "fg<run>b" and "fg<run>v<n>" with a 1–6 character run id.
func isOurLink(name string) bool {
	rest := strings.TrimPrefix(name, "fg")
	if i := strings.LastIndexByte(rest, 'v'); i > 0 && i <= 6 {
		if _, err := strconv.Atoi(strings.TrimSuffix(rest[i+1:], "p")); err == nil {
			return true
		}
	}
	return strings.HasSuffix(rest, "b") && len(rest) >= 2 && len(rest) <= 7
}

// Clean removes what killed runs left behind (run "" for every run): processes in
// their namespaces, the namespaces, veths and bridges. It reports what it removed.
//
// That covers network faults left in force too, with nothing to list: their
// nftables tables and the tbf on a host's eth0 live inside the host's namespace and
// are freed with it (nftables state is per network namespace), and the tbf on a
// root-side veth is freed with the veth. No fault ever puts a rule in the root
// namespace.
func Clean(ctx context.Context, run string) (removed []string, err error) {
	nss, lks := Leftovers(ctx, run)
	var errs []error
	for _, ns := range nss {
		killNamespace(ctx, ns)
	}
	for _, l := range lks {
		if linkExists(ctx, l) { // deleting one veth end deletes its peer
			if e := ip(ctx, "link", "del", l); e != nil {
				errs = append(errs, e)
				continue
			}
			removed = append(removed, "link "+l)
		}
	}
	for _, ns := range nss {
		if e := ip(ctx, "netns", "del", ns); e != nil {
			errs = append(errs, e)
			continue
		}
		removed = append(removed, "netns "+ns)
	}
	return removed, errors.Join(errs...)
}
