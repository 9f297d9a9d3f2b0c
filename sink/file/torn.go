package file

import (
	"bytes"
	"os"
)

// cutTornTail cuts a last line without its newline off the file at path,
// of the given size, and returns the new size. Such a line was torn by a
// crash in the middle of a write: it came after the last Sync, so the
// writer (the driver, from its checkpoint) writes it again whole.
func cutTornTail(path string, size int64) (int64, error) {
	r, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	buf := make([]byte, 64<<10)
	for end := size; end > 0; {
		n := min(int64(len(buf)), end)
		if _, err := r.ReadAt(buf[:n], end-n); err != nil {
			return 0, err
		}
		if end == size && buf[n-1] == '\n' {
			return size, nil
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			keep := end - n + int64(i) + 1
			return keep, os.Truncate(path, keep)
		}
		end -= n
	}
	return 0, os.Truncate(path, 0)
}
