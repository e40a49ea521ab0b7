#!/bin/sh
# Example manual action: run with `postdeploy deploy --one core.fix_legacy_accounts`.
echo "fixing legacy accounts of $1"
