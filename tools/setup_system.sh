#!/usr/bin/env bash
# The system packages the tests use as real parts, from Debian's archive (never a browser or
# model download): FFmpeg (the hostile-file corpus, stream senders), GStreamer's RTSP server run
# by Debian's python3 (python3-gi), Chromium (the serve page through Playwright) and Mosquitto
# (an MQTT broker on loopback). Idempotent: nothing is fetched when all are installed. Where
# they cannot be installed (not Debian, no root and no sudo, no network), it says so in one
# line and the tests that need them skip with a reason.
set -uo pipefail
PACKAGES="ffmpeg chromium mosquitto python3-gi gir1.2-gst-rtsp-server-1.0
    gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
    gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-rtsp"
# shellcheck disable=SC2086
if ! command -v dpkg >/dev/null || ! command -v apt-get >/dev/null; then
    echo "setup_system: not a Debian system; install $(echo $PACKAGES) by hand or their tests skip" >&2
    exit 0
fi
# shellcheck disable=SC2086
dpkg -s $PACKAGES >/dev/null 2>&1 && exit 0
if [ "$(id -u)" -eq 0 ]; then SUDO=""
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO="sudo -n"
else
    echo "setup_system: apt-get needs root (or sudo); the FFmpeg/RTSP/Chromium/MQTT tests skip" >&2
    exit 0
fi
# shellcheck disable=SC2086
if ! ($SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
        $PACKAGES) >/tmp/slowfast_deploy_apt.log 2>&1; then
    echo "setup_system: apt-get failed (see /tmp/slowfast_deploy_apt.log); their tests skip" >&2
fi
exit 0
