package driver

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ucp-audit/ucp-audit/sink"
)

// gapRecord states that events will never reach a destination. It is
// written to audit.log, so the trail itself shows the gap, and to
// quarantine.log with the reason.
type gapRecord struct {
	Destination       string `json:"destination"`
	Lost              uint64 `json:"lost"`
	FirstSeq, LastSeq uint64
	Reason            string `json:"reason"`
}

type gapJSON struct {
	Time          string `json:"time"`
	ContainerID   string `json:"container-id"`
	ContainerName string `json:"container-name"`
	Destination   string `json:"destination"`
	Lost          uint64 `json:"lost"`
	FirstSeq      uint64 `json:"first-seq"`
	LastSeq       uint64 `json:"last-seq"`
	Reason        string `json:"reason"`
}

// recordGap writes g to both files. It retries nothing: a failing file is
// logged, as the pipeline's own writes will also find it failing.
func recordGap(g gapRecord, info Info, auditFile, quarantine sink.Sink) error {
	j := gapJSON{
		Time: time.Now().UTC().Format(time.RFC3339Nano), ContainerID: info.ContainerID, ContainerName: containerName(info),
		Destination: g.Destination, Lost: g.Lost, FirstSeq: g.FirstSeq, LastSeq: g.LastSeq, Reason: g.Reason,
	}
	a, err := marshal(map[string]any{"ucp-audit/gap": j})
	if err != nil {
		return err
	}
	q, err := marshal(struct {
		gapJSON
		Summary string `json:"summary"`
	}{j, fmt.Sprintf("%d events (seq %d-%d) not delivered to %s: %s", g.Lost, g.FirstSeq, g.LastSeq, g.Destination, g.Reason)})
	if err != nil {
		return err
	}
	if err := auditFile.Write(a); err != nil {
		return err
	}
	if err := quarantine.Write(q); err != nil {
		return err
	}
	if err := auditFile.Sync(); err != nil {
		return err
	}
	return quarantine.Sync()
}

func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("gap record: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
