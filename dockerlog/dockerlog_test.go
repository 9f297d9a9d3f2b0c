package dockerlog

import "testing"

func TestInfoName(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"/ucp-controller", "ucp-controller"},
		{"ucp-controller", "ucp-controller"},
		{"/", ""},
		{"", ""},
	} {
		if got := (Info{ContainerName: tt.in}).Name(); got != tt.want {
			t.Errorf("Name of %q = %q, want %q", tt.in, got, tt.want)
		}
	}
}
