#!/usr/bin/env bash
# One scenario run with either tool; outputs are compared after normalizing
# timestamps, raw keys, the temp dir and Python's getpass warnings.
# usage: scenario.sh BIN DIR
BIN=$1; D=$2; rm -rf $D; mkdir -p $D; cd $D
run(){ echo "--- $* [$(echo -n "$IN" | tr '\n' '|')]"; printf '%s' "$IN" | $BIN "$@" >o 2>e; rc=$?; echo "rc=$rc"; echo "OUT:"; sed -E 's/[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z/TS/g; s/P[0-9a-f]{64}P/RAWKEY/' o; echo "ERR:"; cat e | sed "s|$D|DIR|g"; }
IN=$'a@x\npw\npw\n' run init --key-type fast
IN=$'a@x\npw\npw\n' run init --key-type fast
export PPROTECT_USER=a@x PPROTECT_PASSPHRASE=pw
IN=$'dev\n' run add-domain
IN=$'dev\nk1\nval1\n' run add-secret
IN=$'dev\nk1\nval2\n' run update-secret
printf 'line1\nit'"'"'s\n' > val.txt
IN=$'dev\nk2\n' run add-secret --from-file val.txt
IN='' run decrypt-domain dev
IN='' run decrypt-domain --output-format env dev
IN='' run decrypt-domain --output-format shell --secret k1 dev
IN='' run decrypt-domain --secret k1 dev
IN='' run decrypt-domain --output-format json --secret k1 dev
IN='' run decrypt-domain --secret nope dev
IN='' run decrypt-domain --output-format xml dev
IN='' run decrypt-domain nodom
IN='' PPROTECT_PASSPHRASE=bad run decrypt-domain dev
IN='' PPROTECT_PASSPHRASE= run decrypt-domain dev
IN=$'pw\n' run decrypt-domain --ignore-env --user a@x dev
IN=$'a@x\npw\n' run decrypt-domain --ignore-env dev
IN='' run decrypt-domain --ignore-env --non-interactive dev
echo pw > pf; IN='' run decrypt-domain --non-interactive --passphrase-file pf dev
IN='' run decrypt-domain --non-interactive --passphrase-file nonexist dev
IN='' run list-domains
IN='' run list-domain-secrets dev
IN='' run list-all-secrets
IN='' run list-user-secrets
IN=$'b@x\npw2\npw2\n' run add-key-custodian --key-type fast
IN=$'c@x\npw2\npw3\n' run add-key-custodian --key-type fast
IN=$'b@x\npw2\npw2\n' run add-key-custodian --key-type weird
IN=$'dev\nb@x\n' run add-owner
IN=$'dev\nzz@x\n' run add-owner
IN=$'nodom\nb@x\n' run add-owner
IN=$'dev\nb@x\n' run rm-owner
IN=$'dev\nb@x\n' run rm-owner
IN=$'dev\na@x\n' run rm-owner
IN=$'dev\nk1\nv\n' run add-secret
IN=$'dev\nnope\nv\n' run update-secret
IN=$'dev\nk2\n' run rm-secret
IN=$'dev\n' run rotate-domain-keys
IN='' run decrypt-domain dev
IN=$'b@x\ny\n' run migrate-owner
IN=$'b@x\nn\n' run migrate-owner
IN=$'prod\n' run add-domain
IN=$'prod\n' run add-domain
IN=$'prod\n' run rm-domain
IN=$'b@x\npw2\npw4\npw4\n' run set-key-custodian-passphrase --key-type fast
IN=$'b@x\nbad\npw4\npw4\n' run set-key-custodian-passphrase --key-type fast
IN=$'b@x\npw4\npw5\npw5\n' run rekey-custodian --key-type fast
IN=$'r@x\nYES\n' run add-key-custodian --key-type raw
IN=$'r2@x\nno\n' run add-key-custodian --key-type raw
IN='' run exec --domain dev -- sh -c 'echo $k1; echo ${PPROTECT_USER:-unset}; exit 7'
IN='' run exec --domain dev --uppercase --prefix APP -- sh -c 'env | grep APP_ | sort'
IN='' run exec --domain dev
IN='' run exec -- true
IN='' run list-audit-log
