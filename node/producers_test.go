package node

import (
	"strings"
	"testing"
)

func TestRepository(t *testing.T) {
	for in, want := range map[string]string{
		"docker/ucp-controller:3.2.5":                           "docker/ucp-controller",
		"mirantis/ucp-controller":                               "mirantis/ucp-controller",
		"registry.example.com:5000/mirantis/ucp-controller:3.7": "registry.example.com:5000/mirantis/ucp-controller",
		"localhost:5000/ucp-controller@sha256:abcd":             "localhost:5000/ucp-controller",
		"ucp-controller:latest@sha256:abcd":                     "ucp-controller",
		"sha256:" + strings.Repeat("a", 64):                     "sha256",
		"":                                                      "",
	} {
		if got := Repository(in); got != want {
			t.Errorf("Repository(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestProducerMatch(t *testing.T) {
	id := "sha256:" + strings.Repeat("0f", 32)
	other := "sha256:" + strings.Repeat("1e", 32)
	for _, tc := range []struct {
		rule Producer
		ct   Container
		want bool
	}{
		// The default: the repository's last path component.
		{Producer{Image: "ucp-controller"}, Container{ImageName: "docker/ucp-controller:3.2.5"}, true},
		{Producer{Image: "ucp-controller"}, Container{ImageName: "mirantis/ucp-controller:3.7.1"}, true},
		{Producer{Image: "ucp-controller"}, Container{ImageName: "registry.example.com:5000/mirantis/ucp-controller:3.7.1"}, true},
		{Producer{Image: "ucp-controller"}, Container{ImageName: "ucp-controller"}, true},
		{Producer{Image: "ucp-controller"}, Container{ImageName: "docker/ucp-controller-tools:1"}, false},
		{Producer{Image: "ucp-controller"}, Container{ImageName: "ucp-controller/agent:1"}, false},
		{Producer{Image: "ucp-controller"}, Container{ImageName: id}, false},
		{Producer{Image: "ucp-controller"}, Container{ImageName: "busybox", Name: "ucp-controller"}, false},
		// A repository with its organisation, with or without a registry.
		{Producer{Image: "mirantis/ucp-controller"}, Container{ImageName: "mirantis/ucp-controller:3.7.1"}, true},
		{Producer{Image: "mirantis/ucp-controller"}, Container{ImageName: "registry.example.com/mirantis/ucp-controller:3.7.1"}, true},
		{Producer{Image: "mirantis/ucp-controller"}, Container{ImageName: "docker.io/mirantis/ucp-controller:3.7.1"}, true},
		{Producer{Image: "mirantis/ucp-controller"}, Container{ImageName: "evil/ucp-controller:3.7.1"}, false},
		{Producer{Image: "registry.example.com/*/ucp-controller"}, Container{ImageName: "registry.example.com/mirantis/ucp-controller:3"}, true},
		{Producer{Image: "registry.example.com/*/ucp-controller"}, Container{ImageName: "mirantis/ucp-controller:3"}, false},
		{Producer{Image: "docker.io/library/busybox"}, Container{ImageName: "busybox"}, true},
		// Narrowed to an image ID and a name.
		{Producer{Image: "ucp-controller", ImageID: id}, Container{ImageName: "mirantis/ucp-controller:3", ImageID: id}, true},
		{Producer{Image: "ucp-controller", ImageID: id}, Container{ImageName: "mirantis/ucp-controller:3", ImageID: other}, false},
		{Producer{ImageID: id}, Container{ImageName: "anything", ImageID: id}, true},
		{Producer{Name: "ucp-controller"}, Container{Name: "/ucp-controller"}, true},
		{Producer{Name: "ucp-controller"}, Container{Name: "ucp-controller-2"}, false},
		{Producer{Name: "ucp-*"}, Container{Name: "/ucp-kv"}, true},
		{Producer{}, Container{ImageName: "ucp-controller"}, false},
	} {
		if got := tc.rule.Match(tc.ct); got != tc.want {
			t.Errorf("%+v matches %+v: %v, want %v", tc.rule, tc.ct, got, tc.want)
		}
	}
}

func TestIsProducer(t *testing.T) {
	c := Default(Env{})
	if !c.IsProducer(Container{ImageName: "docker/ucp-controller:3.2.5"}) || c.IsProducer(Container{ImageName: "busybox"}) {
		t.Error("default producers")
	}
	c.Producers = nil
	if c.IsProducer(Container{ImageName: "docker/ucp-controller:3.2.5"}) {
		t.Error("no producers: a producer")
	}
	c.Producers = []Producer{{Name: "a"}, {Image: "b"}}
	if !c.IsProducer(Container{ImageName: "b:1"}) || !c.IsProducer(Container{Name: "a"}) || c.IsProducer(Container{Name: "b"}) {
		t.Error("two rules")
	}
}

func FuzzProducerMatch(f *testing.F) {
	f.Add("ucp-controller", "docker/ucp-controller:3", "/x")
	f.Add("a/*/b", "host:5000/a/c/b@sha256:00", "n")
	f.Fuzz(func(t *testing.T, pattern, image, name string) {
		if checkPattern(pattern) != nil {
			return
		}
		// Never panics, and a rule on the image alone ignores the name.
		a := Producer{Image: pattern}.Match(Container{ImageName: image, Name: name})
		b := Producer{Image: pattern}.Match(Container{ImageName: image})
		if a != b {
			t.Fatalf("the name changed an image rule's result")
		}
	})
}
