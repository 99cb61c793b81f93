package embedredis

import "errors"

// ErrLocked means another server has the store directory open.
var ErrLocked = errors.New("embedredis: store directory in use by another server")

// ErrCorrupt means the journal is damaged before its last record, where a
// crash cannot have torn it: the store refuses to start rather than drop
// acknowledged writes. Move the file away to start empty.
var ErrCorrupt = errors.New("embedredis: journal corrupt")

// errKilled is the state of a server stopped by Kill.
var errKilled = errors.New("embedredis: server killed")
