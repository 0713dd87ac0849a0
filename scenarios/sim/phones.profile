# A population of phones, for `socialctl sim`.
#
# Lines are "keyword value [key=value ...]"; # starts a comment. Weights are relative.
# Times are "300ms", "2s", "15m" or ranges "1s..4s" (uniform). Shares are "5%".
# Copy this file, edit it and pass it with `socialctl sim --profile FILE`.

# The seeded population the phones sign in as (`socialctl seed`, or made by sim itself).
population  users=300 password=password123

#       weight  manufacturer  model-identifier  os       os-version  model name
device  30      Google        GKWS6             android  14          Pixel 8
device  20      Samsung       SM-S911B          android  14          Galaxy S23
device  12      Samsung       SM-A546B          android  13          Galaxy A54
device  8       Xiaomi        23049PCD8G        android  13          Redmi Note 12
device  18      Apple         iPhone15,2        ios      17.5        iPhone 14 Pro
device  12      Apple         iPhone13,2        ios      16.7        iPhone 12

# The app each platform runs (service.name and service.version of its telemetry).
app  android  name=socialnet-android  version=3.2.0
app  ios      name=socialnet-ios      version=3.2.1

# Networks: the share of devices on each, the latency each way, how long the app waits
# for an answer, and the share of connection attempts that fail.
network  wifi      weight=55  latency=10ms..40ms   timeout=10s  fail=0.5%
network  cell:lte  weight=30  latency=40ms..150ms  timeout=15s  fail=2%
network  cell:nr   weight=15  latency=20ms..60ms   timeout=15s  fail=1%

# Time between two screens, and pages read in a row on the timeline.
think      1s..4s
pages      1..3

# Going to the background and coming back (a new warm start); the session id rotates
# after `background=` in the background, or `max=` at the longest, as Android's SDK does.
background every=20s..60s for=2s..20s
session    background=15m max=240m

# Phones that lose the network: how often and for how long; their spans wait in a
# bounded on-device buffer (oldest dropped when full) and are uploaded when they are back.
offline    share=20%  every=20s..60s  for=5s..20s
buffer     spans=300  upload-every=5s

# Phones whose clock is wrong, by how much.
skew       share=10%  offset=-3m..3m

# The share of requests sent deliberately wrong (bad tokens, bad bodies, unknown ids,
# replayed refresh tokens): each must get a 4xx with the JSON error body.
bad        share=3%

# A day compressed into this long: activity follows the hours (quiet at night, busiest
# in the evening); the run starts at 06:00. Without it, activity is the same all run.
# day        length=10m

# Screens and their weights.
screen  timeline     50
screen  post-detail  12
screen  profile      12
screen  like         10
screen  comment      5
screen  compose      6
screen  photo        2
screen  message      5
