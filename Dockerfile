# Plugin rootfs for ucp-audit. Built offline by `make rootfs` from the minimal
# context it prepares under build/context: the static binary, an empty
# directory and an empty file (scratch has no shell, so directories and mount
# targets are created by copying them).
FROM scratch
COPY ucp-audit /ucp-audit
COPY empty/ /run/docker/plugins/
COPY empty/ /var/log/ucp-audit/
COPY empty/ /var/lib/ucp-audit/
COPY empty/ /tmp/
COPY empty-file /etc/ucp-audit/hostname
COPY build-id /etc/ucp-audit/build-id
ENTRYPOINT ["/ucp-audit"]
