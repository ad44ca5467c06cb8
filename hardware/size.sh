#!/usr/bin/env bash
# Prints a firmware image's flash and static RAM use and fails when either
# is over its budget.
#
#   hardware/size.sh IMAGE FLASH_BUDGET_KIB RAM_BUDGET_KIB
#
# Flash is what the image stores: vector table, code, read-only data and the
# initial values of .data. Static RAM is .data, .bss and .uninit; the stack
# takes what is left of RAM and is not counted here. Uses GNU size from
# binutils, which reads any little-endian ELF (as elf32-little).
set -euo pipefail
image=$1
flash_budget=$(( $2 * 1024 ))
ram_budget=$(( $3 * 1024 ))
[ -f "$image" ] || { echo "error: $image not built" >&2; exit 1; }
# Berkeley format: text (vector table, code, rodata), data, bss.
read -r text data bss _ < <(size "$image" | tail -n 1)
flash=$(( text + data ))
ram=$(( data + bss ))
kib() { awk -v b="$1" 'BEGIN { printf "%.1f KiB", b / 1024 }'; }
printf '%s\n  flash %7d B (%s) of %s\n  RAM   %7d B (%s) of %s (static; the stack is the rest)\n' \
    "$image" "$flash" "$(kib "$flash")" "$(kib "$flash_budget")" \
    "$ram" "$(kib "$ram")" "$(kib "$ram_budget")"
status=0
if [ "$flash" -gt "$flash_budget" ]; then
    echo "error: $image: flash over budget" >&2
    status=1
fi
if [ "$ram" -gt "$ram_budget" ]; then
    echo "error: $image: RAM over budget" >&2
    status=1
fi
exit $status
