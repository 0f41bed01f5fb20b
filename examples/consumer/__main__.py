"""linuxkit-swarm consumer: a swarm stack's nodes as Ansible inventory and Prometheus targets.

Another stack reads the swarm stack's outputs and writes both files on this machine.

Wiring only: config -> StackReference -> checked outputs (consumer_render) -> files.
"""

from pathlib import Path

import consumer_render as render
import pulumi
from pulumi_command import local

PROJECT_DIR = Path(__file__).resolve().parent
# Written through a temp file and a rename, so a reader never sees half a file.
WRITE_FILE = 'mkdir -p "$(dirname "$TARGET")" && cat > "$TARGET.tmp" && mv -f "$TARGET.tmp" "$TARGET"'
REMOVE_FILE = 'rm -f "$TARGET"'

config = pulumi.Config()
swarm_stack = config.require("swarmStack")
require_managers = config.get_bool("requireManagers")
configured_port = config.get_int("nodeExporterPort")
out_dir = PROJECT_DIR / (config.get("outputDir") or f"out/{pulumi.get_stack()}")
try:
    port = render.check_port(9100 if configured_port is None else configured_port)
except render.OutputError as exc:
    raise pulumi.RunError(str(exc)) from None

# Reads the producer's outputs from the same backend; secret ones stay secret.
producer = pulumi.StackReference(swarm_stack)
join_command = producer.get_output("workerJoinCommand")


def _check(values: dict[str, object]) -> render.Swarm:
    """The outputs checked, or a message naming each bad output (no traceback)."""
    join = values.pop("workerJoinCommand")
    try:
        return render.check_outputs(swarm_stack, values, join, require_managers is not False)
    except render.OutputError as exc:
        raise pulumi.RunError(str(exc)) from None


checked = pulumi.Output.all(
    workerJoinCommand=join_command,
    **{key: producer.get_output(key) for key in (*render.NODE_OUTPUTS, "swarmAdvertiseAddress")},
).apply(_check)
# The check reads the secret join command, which makes its result secret; the result
# holds names, IPs and the address only, so the files' contents need not be.
swarm = pulumi.Output.unsecret(checked)


def write_file(name: str, path: Path, content: pulumi.Output[str]) -> local.Command:
    """A file on this machine with ``content``, removed on destroy."""
    return local.Command(
        name,
        create=WRITE_FILE,
        delete=REMOVE_FILE,
        environment={"TARGET": str(path)},
        stdin=content,
        # A new path replaces the resource (old file removed first); new content
        # is an update that runs WRITE_FILE again.
        triggers=[str(path)],
        opts=pulumi.ResourceOptions(delete_before_replace=True),
    )


inventory_path = out_dir / "inventory.yml"
file_sd_path = out_dir / "node-exporter.json"
inventory = write_file("ansible-inventory", inventory_path, swarm.apply(render.render_inventory))
file_sd_json = swarm.apply(lambda s: render.render_file_sd(s, port))
file_sd = write_file("prometheus-file-sd", file_sd_path, file_sd_json)

# The paths once the files are written.
pulumi.export("inventoryPath", inventory.id.apply(lambda _: str(inventory_path)))
pulumi.export("fileSdPath", file_sd.id.apply(lambda _: str(file_sd_path)))
pulumi.export("nodeCount", swarm.apply(lambda s: len(s.nodes)))
# Re-exported for hosts that join outside Ansible; a secret here too.
pulumi.export("workerJoinCommand", pulumi.Output.secret(checked.apply(lambda _: join_command)))
