"""mimo-rpc's network interface subcommands (SPDK's net_* of 17.x-20.07, with their old names
as aliases, as rpc.py had them)."""


def add_commands(sub, simple):
    """simple(sub, name, help, build, aliases) adds a one-request subcommand (cli._simple)."""
    def address(name, alias, help):
        p = simple(sub, name, help, lambda a: {"ifc_index": a.ifc_index,
                                               "ip_address": a.ip_addr}, aliases=[alias])
        p.add_argument("ifc_index", type=int, help="the interface's index (net_get_interfaces)")
        p.add_argument("ip_addr", help="an IPv4 address, added as /32")

    address("net_interface_add_ip_address", "add_ip_address",
            "add an IPv4 address to an interface")
    address("net_interface_delete_ip_address", "delete_ip_address",
            "delete an IPv4 address from an interface")
    simple(sub, "net_get_interfaces", "the host's interfaces and their IPv4 addresses",
           aliases=["get_interfaces"])
