# examples/jails/hello.toml under Nomad (see README.md, "Beyond one machine").
#
# raw_exec runs `sysjail up` as root on the client with no isolation of its
# own: sysjail is the isolation, with every promise of `sysjail policy`, its
# supervisor and its own init, exactly as on one machine. Enable the driver on
# the clients (plugin "raw_exec" { config { enabled = true } }) and install
# sysjail and the definition (with what it extends) on them.
job "hello" {
  datacenters = ["dc1"]
  type        = "batch"

  group "hello" {
    task "hello" {
      driver = "raw_exec"

      config {
        command = "/usr/local/bin/sysjail"
        # Foreground: Nomad supervises sysjail, sysjail supervises the jail.
        args    = ["up", "/etc/sysjail/jails/hello.toml"]
      }

      # `sysjail down` semantics: the jail's stop signal, then SIGKILL
      # after stop-timeout ("5s" in base.toml); sysjail forwards SIGTERM to
      # the jail and cleans up before it exits.
      kill_signal  = "SIGTERM"
      kill_timeout = "10s"

      # Nomad's own accounting; the jail's limits are its [limits] section.
      resources {
        cpu    = 1000
        memory = 256
      }
    }
  }
}
