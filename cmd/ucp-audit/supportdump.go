package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/ucp-audit/ucp-audit/metrics"
	"github.com/ucp-audit/ucp-audit/node"
)

// supportDump runs `ucp-audit support-dump DIR`.
func supportDump(args []string) int { return hostCommand(runSupportDump, args) }

const supportDumpUsage = `usage: ucp-audit support-dump [flags] DIR

Writes what a support case needs into DIR (created, mode 0700; it must not
exist or be empty): versions.txt (this binary, Docker, the plugin and its
settings), node-config.json (the node configuration in force, secrets
removed), status.txt (the plugin's metrics summary, when its METRICS_ADDRESS
is set), plugin.log (the plugin's recent log lines from dockerd's log),
verify.txt (ucp-audit verify --live of the trail's files in force) and,
only when the node configuration's supportDumpIncludeAuditLogs is true,
trail/ with a copy of those files and their rotations. README.txt lists what was written and what could not be.

Flags:
`

// dumpTimeout bounds each outside command and request of a support dump.
const dumpTimeout = 20 * time.Second

func runSupportDump(ctx context.Context, args []string, env hostEnv) int {
	fs := flag.NewFlagSet("support-dump", flag.ContinueOnError)
	nodeFile := fs.String("file", node.Env{}.Path(), "the node configuration document")
	logDir := fs.String("log-dir", node.DefaultLogDir, "the trail's directory on the host")
	pluginName := fs.String("plugin", "ucp-audit", "the plugin's name in `docker plugin ls`")
	dockerLog := fs.String("docker-log", "", "dockerd's log file; default: journalctl -u docker")
	keyPath := fs.String("key", "", "the seals' public key, passed to verify --key")
	fs.SetOutput(io.Discard)
	rest, err := parseArgs(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(env.stdout, supportDumpUsage)
		fs.SetOutput(env.stdout)
		fs.PrintDefaults()
		return 0
	}
	if err == nil && len(rest) != 1 {
		err = errors.New("want one DIR")
	}
	if err != nil {
		fmt.Fprintf(env.stderr, "ucp-audit support-dump: %v (ucp-audit support-dump -h)\n", err)
		return 2
	}
	dir := rest[0]
	if err := emptyDir(dir); err != nil {
		fmt.Fprintf(env.stderr, "ucp-audit support-dump: %v\n", err)
		return 1
	}
	d := dump{dir: dir, ctx: ctx}
	d.versions(*pluginName)
	cfg := d.nodeConfig(*nodeFile)
	d.status(d.pluginEnv(*pluginName, "METRICS_ADDRESS"))
	d.pluginLog(*pluginName, *dockerLog)
	trail := node.Default(node.Env{}).Trail
	if cfg != nil {
		trail = cfg.Trail
	}
	files := []string{hostPath(trail.AuditFile, *logDir), hostPath(trail.QuarantineFile, *logDir)}
	d.verify(files, *keyPath)
	if cfg != nil && cfg.SupportDumpIncludeAuditLogs {
		d.trail(files)
	} else {
		d.note("trail/", "not included: the node configuration's supportDumpIncludeAuditLogs is false")
	}
	if err := os.WriteFile(filepath.Join(dir, "README.txt"), []byte(d.readme.String()), 0o600); err != nil {
		fmt.Fprintf(env.stderr, "ucp-audit support-dump: %v\n", err)
		return 1
	}
	fmt.Fprintf(env.stdout, "wrote %s:\n%s", dir, d.readme.String())
	if d.failed {
		return 1
	}
	return 0
}

// emptyDir creates dir (mode 0700), or accepts an empty one.
func emptyDir(dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return os.MkdirAll(dir, 0o700)
	}
	if err != nil {
		return err
	}
	if len(ents) > 0 {
		return fmt.Errorf("%s is not empty", dir)
	}
	return os.Chmod(dir, 0o700)
}

// dump writes the parts of a support dump; what cannot be had is noted
// in README.txt, and only a failure to write makes the command fail.
type dump struct {
	ctx    context.Context
	dir    string
	readme strings.Builder
	failed bool
}

func (d *dump) note(name, what string) { fmt.Fprintf(&d.readme, "%-17s %s\n", name, what) }

func (d *dump) write(name, what string, b []byte) {
	if err := os.WriteFile(filepath.Join(d.dir, name), b, 0o600); err != nil {
		d.failed = true
		d.note(name, "not written: "+err.Error())
		return
	}
	d.note(name, what)
}

// run runs a command with dumpTimeout and returns its output.
func (d *dump) run(name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(d.ctx, dumpTimeout)
	defer cancel()
	var out, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return out.Bytes(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out.Bytes(), nil
}

func (d *dump) versions(plugin string) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "ucp-audit %s (commit %s)\n\n", version, commit)
	if out, err := d.run("docker", "version"); err != nil {
		fmt.Fprintf(&b, "docker version: %v\n", err)
	} else {
		b.Write(out)
	}
	b.WriteString("\n")
	if out, err := d.run("docker", "plugin", "inspect", "--format", "{{.Name}} {{.PluginReference}} enabled={{.Enabled}} id={{.ID}}\n{{range .Settings.Env}}{{println .}}{{end}}", plugin); err != nil {
		fmt.Fprintf(&b, "docker plugin inspect %s: %v\n", plugin, err)
	} else {
		b.Write(out)
	}
	d.write("versions.txt", "versions of ucp-audit, Docker and the plugin, and the plugin's settings", b.Bytes())
}

// pluginEnv returns one of the plugin's settings, or "".
func (d *dump) pluginEnv(plugin, key string) string {
	out, err := d.run("docker", "plugin", "inspect", "--format", "{{range .Settings.Env}}{{println .}}{{end}}", plugin)
	if err != nil {
		return ""
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), key+"="); ok {
			return v
		}
	}
	return ""
}

func (d *dump) nodeConfig(path string) *node.Config {
	c, _, found, err := node.Load(path, node.Env{})
	if err != nil {
		d.write("node-config.json", "the node configuration could not be read", []byte(err.Error()+"\n"))
		return nil
	}
	what := "the node configuration in force (" + path + "), secrets removed"
	if !found {
		what = "the node configuration in force: the defaults (" + path + " does not exist)"
	}
	b, _ := json.MarshalIndent(withoutSecrets(c.Redacted()), "", "  ")
	d.write("node-config.json", what, append(b, '\n'))
	return &c
}

// withoutSecrets replaces the values of keys that name secrets.
func withoutSecrets(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			l := strings.ToLower(k)
			if strings.Contains(l, "secret") || strings.Contains(l, "password") || strings.Contains(l, "token") {
				x[k] = "<redacted>"
				continue
			}
			x[k] = withoutSecrets(val)
		}
	case []any:
		for i := range x {
			x[i] = withoutSecrets(x[i])
		}
	}
	return v
}

func (d *dump) status(addr string) {
	if addr == "" {
		d.note("status.txt", "not written: the plugin has no METRICS_ADDRESS")
		return
	}
	ctx, cancel := context.WithTimeout(d.ctx, dumpTimeout)
	defer cancel()
	out, err := metrics.Status(ctx, addr)
	if err != nil {
		out = fmt.Sprintf("ucp-audit status %s: %v\n", addr, err)
	}
	d.write("status.txt", "ucp-audit status "+addr, []byte(out))
}

// pluginLog keeps the last lines dockerd logged for the plugin (dockerd
// logs a plugin's output with plugin=ID).
func (d *dump) pluginLog(plugin, dockerLog string) {
	id, err := d.run("docker", "plugin", "inspect", "--format", "{{.ID}}", plugin)
	if err != nil {
		d.note("plugin.log", "not written: "+err.Error())
		return
	}
	var src []byte
	from := dockerLog
	if dockerLog != "" {
		src, err = readTail(dockerLog, 64<<20)
	} else {
		from = "journalctl -u docker"
		src, err = d.run("journalctl", "-u", "docker", "--no-pager", "--since", "-24h")
	}
	if err != nil {
		d.note("plugin.log", "not written: dockerd's log cannot be reached ("+err.Error()+"); pass --docker-log FILE")
		return
	}
	tag := []byte("plugin=" + strings.TrimSpace(string(id)))
	var mine [][]byte
	for _, l := range bytes.Split(src, []byte("\n")) {
		if bytes.Contains(l, tag) {
			mine = append(mine, l)
		}
	}
	const keep = 5000
	var b bytes.Buffer
	for _, l := range mine[max(0, len(mine)-keep):] {
		b.Write(l)
		b.WriteByte('\n')
	}
	d.write("plugin.log", "the plugin's last log lines in "+from, b.Bytes())
}

// readTail reads at most the last max bytes of a file.
func readTail(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if off := fi.Size() - max; off > 0 {
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			return nil, err
		}
	}
	return io.ReadAll(io.LimitReader(f, max))
}

func (d *dump) verify(files []string, key string) {
	var out, errb bytes.Buffer
	args := append([]string{"--live"}, files...)
	if key != "" {
		args = append([]string{"--key", key}, args...)
	}
	code := runVerify(d.ctx, args, hostEnv{stdout: &out, stderr: &errb, now: time.Now})
	fmt.Fprintf(&out, "%s(exit code %d)\n", errb.String(), code)
	d.write("verify.txt", "ucp-audit verify "+strings.Join(args, " "), out.Bytes())
}

// hostPath maps a path of the trail, as the plugin sees it (below
// node.DefaultLogDir), to the host's log directory logDir (the plugin's
// audit-log-dir mount source).
func hostPath(p, logDir string) string {
	rel, err := filepath.Rel(node.DefaultLogDir, p)
	if err != nil || strings.HasPrefix(rel, "..") {
		return p
	}
	return filepath.Join(logDir, rel)
}

// trail copies the trail's files in force (each with its rotated files,
// compressed or not), as they are.
func (d *dump) trail(files []string) {
	dst := filepath.Join(d.dir, "trail")
	n := 0
	err := os.MkdirAll(dst, 0o700)
	for _, f := range files {
		if err != nil {
			break
		}
		var matches []string
		matches, err = filepath.Glob(f + "*") // the file and its rotations: f.1, f.2.gz, …
		for _, p := range matches {
			if fi, serr := os.Lstat(p); serr != nil || !fi.Mode().IsRegular() {
				continue
			}
			if err = copyFile(p, filepath.Join(dst, filepath.Base(p))); err != nil {
				break
			}
			n++
		}
	}
	if err != nil {
		d.failed = true
		d.note("trail/", "not complete: "+err.Error())
		return
	}
	d.note("trail/", fmt.Sprintf("a copy of the trail's %d files (%s and their rotations; supportDumpIncludeAuditLogs is true)", n, strings.Join(files, ", ")))
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}
