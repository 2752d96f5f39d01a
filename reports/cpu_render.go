package reports

import "fmt"

// cpuSection is the report's CPU per role per phase, per delivered message and
// per login, the agents apart; nil for a run without resource samples.
func cpuSection(s *Summary) *section {
	var cores, per []map[string]float64
	for _, ph := range s.Phases {
		if ph.CPU != nil {
			cores, per = append(cores, ph.CPU.Cores), append(per, ph.CPU.USPerMsg)
		}
	}
	if c := s.ConnectCPU; c != nil {
		cores, per = append(cores, c.Cores), append(per, c.USPerLogin)
	}
	if len(cores) == 0 {
		return nil
	}
	roles := serverRoles(append(cores, per...)...)
	f2 := func(v float64) string { return fmt.Sprintf("%.2f", v) }
	opt := func(v *float64) string {
		if v == nil {
			return "—"
		}
		return fmtCount(float64(int64(*v + 0.5)))
	}
	us := func(m map[string]float64, role string) string {
		v, ok := m[role]
		if !ok {
			return "—"
		}
		return opt(&v)
	}
	coreT := table{Caption: "Cores by role (CPU seconds per second)", Head: append(append([]string{"phase", "delivered/s"}, roles...), "server", "agents")}
	perT := table{Caption: "CPU µs per delivered message", Head: append(append([]string{"phase"}, roles...), "server", "agents", "agents µs per connection-second")}
	for _, ph := range s.Phases {
		c := ph.CPU
		if c == nil {
			continue
		}
		row := []string{ph.Name, fmtCount(float64(int64(c.DeliveredPerS + 0.5)))}
		prow := []string{ph.Name}
		for _, r := range roles {
			row = append(row, f2(c.Cores[r]))
			prow = append(prow, us(c.USPerMsg, r))
		}
		coreT.Rows = append(coreT.Rows, append(row, f2(c.ServerCores), f2(c.Agents.Cores)))
		perT.Rows = append(perT.Rows, append(prow, opt(c.ServerUSPerMsg), opt(c.Agents.USPerMsg), fmt.Sprintf("%.1f", deref0(c.Agents.USPerConnS))))
	}
	sec := section{ID: "cpu", Title: "CPU per phase",
		Paras: []string{"From processes.jsonl (each process's CPU time, sampled every second, restarts added up) and progress.jsonl (the agents' delivered messages and logins), both interpolated at the window's edges. Server is every role but the load agents, which share the machine and are shown apart: their CPU per delivered message, and per connection-second held. The last phase ends at the traffic's end (without the wait for the final deadlines)."}}
	if len(coreT.Rows) > 0 {
		sec.Tables = append(sec.Tables, coreT, perT)
	}
	if c := s.ConnectCPU; c != nil {
		t := table{Caption: fmt.Sprintf("Connect: %s first logins in %.1f s, %s logins/s (idle work in the window included)",
			fmtCount(float64(c.Logins)), c.WindowS, fmtCount(float64(int64(c.LoginsPerS+0.5)))),
			Head: append(append([]string{""}, roles...), "server", "agents")}
		row, crow := []string{"CPU µs per login"}, []string{"cores"}
		for _, r := range roles {
			row = append(row, us(c.USPerLogin, r))
			crow = append(crow, f2(c.Cores[r]))
		}
		t.Rows = append(t.Rows, append(row, opt(c.ServerUSPerLogin), opt(c.Agents.USPerLogin)),
			append(crow, f2(c.ServerCores), f2(c.Agents.Cores)))
		sec.Tables = append(sec.Tables, t)
	}
	return &sec
}

// deref0 is *p, or 0 for nil.
func deref0(p *float64) float64 {
	if p == nil {
		return 0
	}
	return *p
}
