#!/bin/sh
# Example action that depends on core.reindex_search (after = ...).
echo "warming the cache of $POSTDEPLOY_TENANT for release $POSTDEPLOY_RELEASE"
