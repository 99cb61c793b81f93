package lease

import (
	_ "embed"

	"github.com/redis/go-redis/v9"
)

// The scripts are the only multi-key writes; each touches one hash slot.
// Their KEYS/ARGV contracts are in the headers of the .lua files.
var (
	//go:embed lua/connect.lua
	connectSrc string
	//go:embed lua/disconnect.lua
	disconnectSrc string
	//go:embed lua/heartbeat.lua
	heartbeatSrc string
	//go:embed lua/claim.lua
	claimSrc string
	//go:embed lua/session.lua
	sessionSrc string

	connectScript    = redis.NewScript(connectSrc)
	disconnectScript = redis.NewScript(disconnectSrc)
	heartbeatScript  = redis.NewScript(heartbeatSrc)
	claimScript      = redis.NewScript(claimSrc)
	sessionScript    = redis.NewScript(sessionSrc)
)
