package redistest

import "os"

func requireRedis() bool { return os.Getenv("FLOODGATE_REQUIRE_REDIS") == "1" }
