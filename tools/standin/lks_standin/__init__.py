"""Stand-in Pulumi resource providers for this project's end-to-end tests.

The real ``pulumi-resource-command`` 1.2.1 and ``pulumi-resource-vsphere``
4.17.0 cannot be built here: the Go module proxy this project can reach does
not serve their modules (403, see tools/README.md). These stand-ins speak the
same gRPC protocol, under the same plugin names and versions, for the small
part of each provider that linuxkit-swarm uses, so the real Pulumi engine runs
the real program against the real vSphere API of vcsim. They are test
infrastructure, not a replacement: on a workstation with the real plugins,
`pulumi plugin install` puts those first and nothing here is used.
"""
