package reports

import (
	"encoding/xml"
	"fmt"
	"strings"
)

// JUnit XML, the subset CI systems read.
type junitSuites struct {
	XMLName xml.Name     `xml:"testsuites"`
	Name    string       `xml:"name,attr"`
	Tests   int          `xml:"tests,attr"`
	Fail    int          `xml:"failures,attr"`
	Suites  []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name  string      `xml:"name,attr"`
	Tests int         `xml:"tests,attr"`
	Fail  int         `xml:"failures,attr"`
	Time  float64     `xml:"time,attr"`
	Cases []junitCase `xml:"testcase"`
}

type junitCase struct {
	Class   string        `xml:"classname,attr"`
	Name    string        `xml:"name,attr"`
	Failure *junitFailure `xml:"failure,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

// junitXML renders junit.xml: a "gates" suite with one testcase per gate (a failed
// or unmeasured gate is a failure showing value against limit), and a "validity"
// suite with one testcase that fails with the reasons when the run is invalid or
// the harness failed, so CI cannot mistake an untrustworthy run for a green one.
func junitXML(s *Summary) ([]byte, error) {
	gates := junitSuite{Name: s.Scenario + ".gates", Time: s.DurationS}
	for _, g := range s.Gates {
		class := s.Scenario
		if g.Phase != "" {
			class += "." + g.Phase
		}
		c := junitCase{Class: class, Name: g.Name}
		if !g.Pass {
			msg := g.Note
			if g.Value != nil {
				msg = fmt.Sprintf("%s: measured %s, limit %s %s", g.Name, fmtValue(*g.Value, g.Unit), g.Op, fmtValue(g.Limit, g.Unit))
			}
			c.Failure = &junitFailure{Message: msg, Type: "gate", Text: msg}
			gates.Fail++
		}
		gates.Cases = append(gates.Cases, c)
	}
	gates.Tests = len(gates.Cases)

	valid := junitCase{Class: s.Scenario, Name: "run is valid"}
	switch {
	case s.HarnessError != "":
		valid.Failure = &junitFailure{Message: "harness error: " + s.HarnessError, Type: "harness", Text: s.HarnessError}
	case len(s.InvalidReasons) > 0:
		text := strings.Join(s.InvalidReasons, "\n")
		valid.Failure = &junitFailure{Message: "invalid run: " + s.InvalidReasons[0], Type: "invalid", Text: text}
	}
	validity := junitSuite{Name: s.Scenario + ".validity", Tests: 1, Cases: []junitCase{valid}}
	if valid.Failure != nil {
		validity.Fail = 1
	}
	doc := junitSuites{Name: "floodgate " + s.Scenario, Suites: []junitSuite{gates, validity}}
	doc.Tests = gates.Tests + validity.Tests
	doc.Fail = gates.Fail + validity.Fail
	b, err := xml.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("junit.xml: %w", err)
	}
	return append([]byte(xml.Header), append(b, '\n')...), nil
}
