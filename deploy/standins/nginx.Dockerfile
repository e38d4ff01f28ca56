# Stand-in for the official nginx image, built by deploy/standins/build.sh:
# Debian's nginx on the stand-in Debian root, in the foreground, logging to
# the container's output, reading /etc/nginx/nginx.conf like the official one.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends nginx \
 && rm -rf /var/lib/apt/lists/* \
 && ln -sf /dev/stdout /var/log/nginx/access.log \
 && ln -sf /dev/stderr /var/log/nginx/error.log
EXPOSE 80
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]
