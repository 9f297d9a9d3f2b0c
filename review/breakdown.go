package review

import (
	"maps"
	"slices"
	"time"
)

// Chargeback is a table of event counts with one value per cell: a row
// per human user (Event.HumanUser), a column per namespace
// (Event.Namespace; None for cluster-scoped events and APIs without
// namespaces). Rows and columns are ordered by their totals, highest
// first, then by name; cut to the top ones, an Other row and an Other
// column, last, hold the rest, so that every event is in one cell.
type Chargeback struct {
	Namespaces []string        `json:"namespaces"` // the columns
	Rows       []ChargebackRow `json:"rows"`
	Totals     []int           `json:"totals"` // per column
	Total      int             `json:"total"`  // all the events
}

// ChargebackRow is one user's row: Counts[i] is the events in
// Namespaces[i].
type ChargebackRow struct {
	User   string `json:"user"`
	Counts []int  `json:"counts"`
	Total  int    `json:"total"`
}

// chargeback builds the table with at most top users and top namespaces
// (all when top <= 0).
func (s *Summary) chargeback(top int) Chargeback {
	users, namespaces := map[string]int{}, map[string]int{}
	for k, n := range s.userNamespaces {
		users[k[0]] += n
		namespaces[k[1]] += n
	}
	rowKeys, colKeys := keep(users, top), keep(namespaces, top)
	col := make(map[string]int, len(colKeys))
	for i, ns := range colKeys {
		col[ns] = i
	}
	row := make(map[string]int, len(rowKeys))
	cb := Chargeback{Namespaces: colKeys, Rows: make([]ChargebackRow, len(rowKeys)), Totals: make([]int, len(colKeys))}
	for i, u := range rowKeys {
		row[u] = i
		cb.Rows[i] = ChargebackRow{User: u, Counts: make([]int, len(colKeys))}
	}
	for k, n := range s.userNamespaces {
		r, ok := row[k[0]]
		if !ok {
			r = row[Other]
		}
		c, ok := col[k[1]]
		if !ok {
			c = col[Other]
		}
		cb.Rows[r].Counts[c] += n
		cb.Rows[r].Total += n
		cb.Totals[c] += n
		cb.Total += n
	}
	return cb
}

// keep lists the keys of m by count, highest first, then by key; when
// there are more than top (top > 0), the first top and then Other.
func keep(m map[string]int, top int) []string {
	rows := counts(m)
	keys := make([]string, 0, len(rows)+1)
	for _, r := range rows {
		if top > 0 && len(keys) == top && len(rows) > top {
			return append(keys, Other)
		}
		keys = append(keys, r.Key)
	}
	return keys
}

// days counts the events per UTC date, oldest first, then those without
// a time under None.
func (s *Summary) days() []Count {
	perDay := map[string]int{}
	for h, n := range s.hours {
		perDay[h.Format(time.DateOnly)] += n
	}
	out := make([]Count, 0, len(perDay)+1)
	for _, d := range slices.Sorted(maps.Keys(perDay)) {
		out = append(out, Count{d, perDay[d]})
	}
	if s.noTime > 0 {
		out = append(out, Count{None, s.noTime})
	}
	return out
}

// Timeline is the events over time, in buckets of Step: an hour when the
// events' times fall within MaxHourly (at most 72 buckets), a UTC day
// otherwise.
type Timeline struct {
	Step time.Duration
	// From is the start of the first bucket with events, To the end of
	// the last; both zero when no event has a time.
	From, To time.Time
	// Buckets are the buckets with events, oldest first.
	Buckets []Bucket
}

// Bucket is one bucket of a Timeline.
type Bucket struct {
	Start time.Time
	Count int
}

// MaxHourly is the span of event times beyond which a Timeline counts
// per day rather than per hour.
const MaxHourly = 72 * time.Hour

// Timeline returns the events with a time so far, per hour or per day.
func (s *Summary) Timeline() Timeline {
	hours := slices.SortedFunc(maps.Keys(s.hours), func(a, b time.Time) int { return a.Compare(b) })
	if len(hours) == 0 {
		return Timeline{Step: time.Hour}
	}
	t := Timeline{Step: time.Hour}
	if hours[len(hours)-1].Sub(hours[0]) >= MaxHourly {
		t.Step = 24 * time.Hour
	}
	for _, h := range hours {
		start := h.Truncate(t.Step) // whole days in UTC: the zero time is at midnight UTC
		if n := len(t.Buckets); n > 0 && t.Buckets[n-1].Start.Equal(start) {
			t.Buckets[n-1].Count += s.hours[h]
			continue
		}
		t.Buckets = append(t.Buckets, Bucket{start, s.hours[h]})
	}
	t.From, t.To = t.Buckets[0].Start, t.Buckets[len(t.Buckets)-1].Start.Add(t.Step)
	return t
}
