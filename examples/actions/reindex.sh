#!/bin/sh
# Example action: pretends to rebuild a tenant's search index.
echo "reindexing search for $POSTDEPLOY_TENANT ($*)"
echo "indexed 1234 documents"
