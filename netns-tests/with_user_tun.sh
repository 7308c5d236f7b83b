#!/bin/sh
# with_user_tun.sh CMD...: run CMD where /dev/net/tun is usable by any user.
#
# Distributions ship /dev/net/tun as mode 0666 (access to a device is then
# decided by the device's owner, set with `ip tuntap add ... user NAME`). Some
# machines (this CI's among them) have it 0600. Run under `unshare --mount`,
# this bind-mounts a 0666 node of the same device over it, in this mount
# namespace only; the host's node is not touched.
set -e
if [ "$(stat -c %a /dev/net/tun)" != 666 ]; then
    dir=$(mktemp -d /tmp/tunfwt-dev.XXXXXX)
    mknod -m 666 "$dir/tun" c 10 200
    mount --bind "$dir/tun" /dev/net/tun
    rm -f "$dir/tun"
    rmdir "$dir"
fi
exec "$@"
