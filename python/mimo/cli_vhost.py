"""mimo-rpc's vhost subcommands, with rpc.py's argument forms."""


def add_commands(sub, simple):
    """simple(sub, name, help, build) adds a one-request subcommand (cli._simple)."""
    def create(a):
        p = {"ctrlr": a.ctrlr, "dev_name": a.dev_name}
        if a.cpumask:
            p["cpumask"] = a.cpumask
        if a.transport:
            p["transport"] = a.transport
        if a.readonly:
            p["readonly"] = True
        if a.packed_ring:
            p["packed_ring"] = True
        return p

    p = simple(sub, "vhost_create_blk_controller", "add a vhost-user-blk controller", create)
    p.add_argument("ctrlr", help="controller name (its socket: the -S directory/ctrlr)")
    p.add_argument("dev_name", help="the bdev it serves")
    p.add_argument("--cpumask", help="reactors serving its queues (default: all)")
    p.add_argument("--transport", help="virtio-blk transport (only vhost_user_blk)")
    p.add_argument("-r", "--readonly", action="store_true", help="read-only disk")
    p.add_argument("-p", "--packed-ring", action="store_true",
                   help="offer packed virtqueues (VIRTIO_F_RING_PACKED)")
    p = simple(sub, "vhost_get_controllers", "list vhost controllers, or one",
               lambda a: {"name": a.name} if a.name else None)
    p.add_argument("-n", "--name", help="one controller")
    p = simple(sub, "vhost_delete_controller", "delete a vhost controller",
               lambda a: {"ctrlr": a.ctrlr})
    p.add_argument("ctrlr")
    p = simple(sub, "vhost_controller_set_coalescing",
               "interrupt coalescing (delay_base_us 0: off)",
               lambda a: {"ctrlr": a.ctrlr, "delay_base_us": a.delay_base_us,
                          "iops_threshold": a.iops_threshold})
    p.add_argument("ctrlr")
    p.add_argument("delay_base_us", type=int)
    p.add_argument("iops_threshold", type=int)

    def scsi_create(a):
        p = {"ctrlr": a.ctrlr}
        if a.cpumask:
            p["cpumask"] = a.cpumask
        if a.delay:
            p["delay"] = True
        return p

    p = simple(sub, "vhost_create_scsi_controller", "add a vhost-user-scsi controller",
               scsi_create)
    p.add_argument("ctrlr", help="controller name (its socket: the -S directory/ctrlr)")
    p.add_argument("--cpumask", help="reactors serving its queues (default: all)")
    p.add_argument("--delay", action="store_true",
                   help="do not listen until vhost_start_scsi_controller")
    p = simple(sub, "vhost_start_scsi_controller",
               "start listening on a controller created with --delay",
               lambda a: {"ctrlr": a.ctrlr})
    p.add_argument("ctrlr")
    p = simple(sub, "vhost_scsi_controller_add_target",
               "add a target (a SCSI device, LUN 0 the bdev) to a vhost-user-scsi controller",
               lambda a: {"ctrlr": a.ctrlr, "scsi_target_num": a.scsi_target_num,
                          "bdev_name": a.bdev_name})
    p.add_argument("ctrlr")
    p.add_argument("scsi_target_num", type=int, help="0..7, or -1 for the first free")
    p.add_argument("bdev_name")
    p = simple(sub, "vhost_scsi_controller_remove_target",
               "remove a target from a vhost-user-scsi controller",
               lambda a: {"ctrlr": a.ctrlr, "scsi_target_num": a.scsi_target_num})
    p.add_argument("ctrlr")
    p.add_argument("scsi_target_num", type=int)
