package driver

import (
	"time"

	"github.com/ucp-audit/ucp-audit/auditlog"
	"github.com/ucp-audit/ucp-audit/dockerlog"
	"github.com/ucp-audit/ucp-audit/sink"
)

// gapRecord states that events will never reach a destination. recordGap
// writes it as an auditlog.Gap to audit.log, so the trail itself shows the
// gap, and to quarantine.log with the reason.
type gapRecord struct {
	Destination       string `json:"destination"`
	Lost              uint64 `json:"lost"`
	FirstSeq, LastSeq uint64
	Reason            string `json:"reason"`
}

// recordGap writes g to both files. It retries nothing: a failing file is
// logged, as the pipeline's own writes will also find it failing.
func recordGap(g gapRecord, info dockerlog.Info, auditFile, quarantine sink.Sink) error {
	j := auditlog.Gap{
		Time: time.Now().UTC().Format(time.RFC3339Nano), ContainerID: info.ContainerID, ContainerName: info.Name(),
		Destination: g.Destination, Lost: g.Lost, FirstSeq: g.FirstSeq, LastSeq: g.LastSeq, Reason: g.Reason,
	}
	a, err := auditlog.MarshalGap(j)
	if err != nil {
		return err
	}
	q, err := auditlog.MarshalQuarantineGap(j)
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
