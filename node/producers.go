package node

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"
)

// Producer is one rule naming audit producers: the containers whose
// audit-looking lines feed the trail and the destinations. A container is
// a producer when it matches every field a rule sets, for at least one
// rule. Every other container's lines go only to its `docker logs` store.
//
// Anyone who may run a container can also tag an image "…/ucp-controller",
// so the default rule (the repository's last path component) trusts a
// name; a rule with ImageID trusts only that image's content.
type Producer struct {
	// Image matches the container's image repository (without tag or
	// digest) with path.Match: a pattern without "/" matches its last
	// path component ("ucp-controller" matches docker/ucp-controller and
	// registry.example.com:5000/mirantis/ucp-controller); one with "/"
	// matches the whole repository, with or without its registry host.
	Image string
	// ImageID is the image's ID, "sha256:" and 64 hex digits.
	ImageID string
	// Name matches the container's name (without the leading "/") with
	// path.Match.
	Name string
}

var producerFields = []string{"image", "imageID", "name"}

// Container is what producer rules are matched against: what dockerd tells
// the plugin at StartLogging.
type Container struct {
	ImageName string // as the container was created: "mirantis/ucp-controller:3.7.1"
	ImageID   string // "sha256:…"
	Name      string // with or without the leading "/"
}

// IsProducer reports whether ct is an audit producer on this node.
func (c Config) IsProducer(ct Container) bool {
	for _, p := range c.Producers {
		if p.Match(ct) {
			return true
		}
	}
	return false
}

// Match reports whether ct matches every field p sets.
func (p Producer) Match(ct Container) bool {
	if p.Image != "" && !imageMatch(p.Image, Repository(ct.ImageName)) {
		return false
	}
	if p.ImageID != "" && p.ImageID != ct.ImageID {
		return false
	}
	if p.Name != "" {
		if ok, _ := path.Match(p.Name, strings.TrimPrefix(ct.Name, "/")); !ok {
			return false
		}
	}
	return p != Producer{}
}

// Repository returns an image reference's repository: without its digest
// ("@sha256:…") and its tag (":3.7.1"; a registry's port stays).
func Repository(ref string) string {
	if i := strings.IndexByte(ref, '@'); i >= 0 {
		ref = ref[:i]
	}
	slash := strings.LastIndexByte(ref, '/')
	if i := strings.LastIndexByte(ref, ':'); i > slash {
		ref = ref[:i]
	}
	return ref
}

func imageMatch(pattern, repo string) bool {
	if repo == "" {
		return false
	}
	if !strings.Contains(pattern, "/") {
		ok, _ := path.Match(pattern, repo[strings.LastIndexByte(repo, '/')+1:])
		return ok
	}
	for _, cand := range repoForms(repo) {
		if ok, _ := path.Match(pattern, cand); ok {
			return true
		}
	}
	return false
}

// repoForms returns the ways a repository may be written: as given,
// without its registry host, and Docker Hub's implicit forms.
func repoForms(repo string) []string {
	forms := []string{repo}
	first, rest, ok := strings.Cut(repo, "/")
	if ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		forms = append(forms, rest)
		if first == "docker.io" || first == "index.docker.io" {
			if r, ok := strings.CutPrefix(rest, "library/"); ok {
				forms = append(forms, r)
			}
		}
	} else {
		forms = append(forms, "docker.io/"+repo)
		if !ok {
			forms = append(forms, "library/"+repo, "docker.io/library/"+repo)
		}
	}
	return forms
}

var imageID = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

func parseProducers(c *Config, _ Env, v any) error {
	l, ok := v.([]any)
	if !ok {
		return fmt.Errorf("%w: not a list", errType)
	}
	c.Producers = make([]Producer, 0, len(l))
	for i, x := range l {
		at := fmt.Sprintf("producers[%d]", i)
		m, ok := x.(map[string]any)
		if !ok {
			return invalid(at, x, `an object such as {"image": "ucp-controller"}`, nil)
		}
		var p Producer
		for _, k := range slices.Sorted(mapKeys(m)) {
			s, ok := m[k].(string)
			if !ok {
				return invalid(at+"."+k, m[k], "a string", nil)
			}
			var err error
			switch k {
			case "image":
				p.Image, err = s, checkPattern(s)
			case "imageID":
				p.ImageID = s
				if !imageID.MatchString(s) {
					err = errors.New(`not "sha256:" and 64 lowercase hex digits`)
				}
			case "name":
				p.Name, err = strings.TrimPrefix(s, "/"), checkPattern(s)
			default:
				return &KeyError{Key: at + "." + k, Err: ErrUnknownKey, Want: strings.Join(producerFields, ", ")}
			}
			if err != nil {
				return invalid(at+"."+k, s, "", err)
			}
		}
		if p == (Producer{}) {
			return invalid(at, x, "a rule with at least one of "+strings.Join(producerFields, ", "), nil)
		}
		c.Producers = append(c.Producers, p)
	}
	return nil
}

func checkPattern(s string) error {
	if s == "" {
		return errors.New("empty")
	}
	if _, err := path.Match(s, ""); err != nil {
		return errors.New("not a valid pattern")
	}
	return nil
}
