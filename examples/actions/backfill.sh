#!/bin/sh
# Example action that fails, to show what a failure looks like.
echo "backfilling invoices for $1"
echo "error: invoice table is locked by a running migration" >&2
exit 3
