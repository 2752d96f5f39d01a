package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/floodgate/floodgate/internal/keys"
)

// keyKind is one of the secrets a process may hold (SECURITY.md): each comes from
// a file named by its flag or, without the flag, from its environment variable.
// There is deliberately no flag taking a key itself: it would show in ps.
type keyKind int

const (
	// tokenKey signs client LOGIN tokens (token, client, loadgen) and verifies
	// them (gateway).
	tokenKey keyKind = iota
	// clusterKey authenticates every internal link: state, msg, router, gateway,
	// ipconf and control.
	clusterKey
	// adminToken is the bearer token control's mutating endpoints require.
	adminToken
)

// envOldSecret is the variable the single secret of earlier versions was read
// from; a process that finds it set but not the keys it needs says what replaced it.
const envOldSecret = "FLOODGATE_SECRET"

func (k keyKind) flag() string {
	return [...]string{"token-key-file", "cluster-key-file", "admin-token-file"}[k]
}

func (k keyKind) env() string {
	return [...]string{"FLOODGATE_TOKEN_KEY", "FLOODGATE_CLUSTER_KEY", "FLOODGATE_ADMIN_TOKEN"}[k]
}

func (k keyKind) what() string {
	return [...]string{"token key", "cluster key", "admin token"}[k]
}

func (k keyKind) usage() string {
	purpose := [...]string{
		"the token-signing key, which signs and verifies client LOGIN tokens",
		"the cluster key, which authenticates internal links",
		"the admin token, which control's mutating endpoints (POST /v1/drain, /v1/undrain) require as Authorization: Bearer",
	}[k]
	return fmt.Sprintf("file holding %s (default: $%s; at least %d bytes)", purpose, k.env(), keys.MinLen)
}

// keyFlags are the key-file flags of one role.
type keyFlags struct {
	files map[keyKind]*string
}

// registerKeys adds the -<key>-file flag of each kind to fs.
func registerKeys(fs *flag.FlagSet, kinds ...keyKind) *keyFlags {
	kf := &keyFlags{files: map[keyKind]*string{}}
	for _, k := range kinds {
		kf.files[k] = fs.String(k.flag(), "", k.usage())
	}
	return kf
}

// heldKeys are the keys a role loaded; the ones it does not need stay nil.
type heldKeys struct {
	token, cluster, admin []byte
}

// load reads the keys of the given kinds (each registered earlier), checks each
// is at least keys.MinLen bytes and that no two are equal. The errors name the
// flag or variable at fault.
func (kf *keyFlags) load(kinds ...keyKind) (heldKeys, error) {
	var (
		held  heldKeys
		named []keys.Named
	)
	for _, k := range kinds {
		v, source, err := kf.read(k)
		if err != nil {
			return heldKeys{}, err
		}
		named = append(named, keys.Named{Name: source, Key: v})
		switch k {
		case tokenKey:
			held.token = v
		case clusterKey:
			held.cluster = v
		case adminToken:
			held.admin = v
		}
	}
	if err := keys.Validate(named...); err != nil {
		return heldKeys{}, err
	}
	return held, nil
}

// read returns the key of kind k and where it came from ("-flag" or "$VAR").
func (kf *keyFlags) read(k keyKind) (key []byte, source string, err error) {
	file, ok := kf.files[k]
	if !ok {
		return nil, "", fmt.Errorf("the %s has no flag here", k.what()) // a wiring mistake in this command
	}
	if *file != "" {
		b, err := os.ReadFile(*file)
		if err != nil {
			return nil, "", fmt.Errorf("-%s: %w", k.flag(), err)
		}
		return []byte(strings.TrimSpace(string(b))), "-" + k.flag() + " " + *file, nil
	}
	if v := os.Getenv(k.env()); v != "" {
		return []byte(v), "$" + k.env(), nil
	}
	msg := fmt.Sprintf("no %s: give -%s or set %s", k.what(), k.flag(), k.env())
	if os.Getenv(envOldSecret) != "" && k != adminToken {
		msg += fmt.Sprintf("; %s was split into %s (signs and verifies client login tokens) and %s (authenticates internal links), see SECURITY.md",
			envOldSecret, tokenKey.env(), clusterKey.env())
	}
	return nil, "", errors.New(msg)
}
