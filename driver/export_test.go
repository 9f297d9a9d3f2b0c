package driver

import "github.com/ucp-audit/ucp-audit/driver/delivery"

// Test hooks: newDriver takes hooks (see there); crash plays a kill -9.

// crash stops every goroutine the way kill -9 would, as far as the state
// directory can tell: no drain, no final checkpoint, streams stay marked
// running. Tests of re-attaching use it.
func (d *Driver) crash() {
	d.mu.Lock()
	d.closed = true
	var all []*stream
	for _, s := range d.byID {
		all = append(all, s)
	}
	var dls []*delivery.Delivery
	for _, dl := range d.deliveries {
		dls = append(dls, dl)
	}
	d.mu.Unlock()
	for _, s := range all {
		s.reader.Crash()
		s.kill()
	}
	for _, dl := range dls {
		dl.Stop()
	}
	d.alerts.close()
	d.cancel()
	d.wg.Wait()
	_ = d.files.Close()
}
