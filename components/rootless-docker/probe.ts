/**
 * What verify's probe reads of a rootless daemon (verify/probe.ts assembles the one script):
 * the rootful units, and the Docker API over the user's socket.
 */
import { shellQuote } from "../core/shell";

/** System units whose state the probe reads (with the user manager and the app units). */
export const ROOTFUL_UNITS = ["docker.socket", "docker.service", "containerd.service"] as const;

/** Bounds on one Docker API answer read by the probe (the socket is in the user's hands). */
export const DOCKER_API_LIMITS = { seconds: 15, bytes: 64 * 1024 * 1024 } as const;

/**
 * Reads the Docker API over the unix socket (HTTP/1.0: no chunked bodies): /info, every
 * container's inspect document, the networks, and the proxy container's pid. The socket
 * lives in the service user's runtime directory, so whatever answers is evidence, not trust:
 * each answer is cut at DOCKER_API_LIMITS (a fake daemon that streams forever or never
 * finishes cannot grow this root process or hold it).
 */
export const DOCKER_API_PERL = String.raw`# no modules: loading Socket/IO::Socket costs more than the requests on a slow host.
# AF_UNIX = 1, SOCK_STREAM = 1 (Linux on x86 and arm); sockaddr_un = family + path.
# M: the marker; P: the section prefix (a tenant's), both from root's environment; U: the uid
# whose runtime directory holds the socket
my ($sock, $proxy, $secs, $max) = @ARGV; my $m = $ENV{M}; my $p = defined $ENV{P} ? $ENV{P} : "";
# run as root, connect() is done as U (its gid, no other group): a link it put in its own
# directory leads only to a socket it could connect to itself, never to another's or root's
sub connect_as {
  my ($c, $addr) = @_;
  my $u = $ENV{U};
  return connect($c, $addr) unless defined $u && $u =~ /^\d+$/ && $< == 0;
  my $g = (getpwuid($u))[3]; $g = $u unless defined $g;
  $) = "$g $g"; $> = $u;
  die "could not become uid $u to connect\n" unless $> == $u;
  my $ok = connect($c, $addr); my $err = $!;
  $> = 0; $) = "0 0";
  die "could not become root again\n" unless $> == 0;
  $! = $err; return $ok;
}
$secs ||= ${DOCKER_API_LIMITS.seconds}; $max ||= ${DOCKER_API_LIMITS.bytes};
sub section { print "\n$m $p$_[0]\n" }
# every answer counts against one budget too: many large answers cannot add up
my ($spent, $total) = (0, 4 * $max);
sub get {
  my ($c, $r) = (undef, "");
  my $ok = eval {
    local $SIG{ALRM} = sub { die "no complete answer within $secs s\n" };
    alarm $secs;
    socket($c, 1, 1, 0) && connect_as($c, pack("S Z108", 1, $sock))
      or die "Cannot connect to the Docker daemon at unix://$sock: $!\n";
    syswrite($c, "GET $_[0] HTTP/1.0\r\nHost: docker\r\n\r\n");
    while (sysread($c, my $buf, 65536)) {
      $r .= $buf; $spent += length($buf);
      die "answer over $max bytes\n" if length($r) > $max;
      die "answers over $total bytes in all\n" if $spent > $total;
    }
    alarm 0; 1;
  };
  alarm 0; close $c if $c;
  if (!$ok) { chomp(my $e = $@); return (0, $e =~ /^Cannot connect/ ? $e : "Docker API $_[0]: $e") }
  my ($head, $body) = split /\r\n\r\n/, $r, 2;
  my ($code) = (defined $head ? $head : "") =~ m{^HTTP/1\.[01] (\d{3})};
  $body = "" unless defined $body; $body =~ s/\s+\z//;
  return ($code || 0, $body);
}
my ($code, $body) = get("/info");
section("docker-info"); print "$body\nexit=", ($code == 200 ? 0 : 1), "\n";
($code, $body) = get("/containers/json?all=1");
section("containers");
if ($code != 200) { print "docker ps failed: $body\n" } else {
  my @docs; my $pid = 0;
  my %seen;
  for my $id (grep { !$seen{$_}++ } $body =~ /"Id":"([0-9a-f]{64})"/g) {
    my ($c2, $b2) = get("/containers/$id/json");
    next unless $c2 == 200;
    push @docs, $b2;
    if ($proxy ne "" && $b2 =~ m{"Name":"/\Q$proxy\E"} && $b2 =~ /"Pid":(\d+)/) { $pid = $1 }
  }
  print "[", join(",", @docs), "]\n";
  section("proxy-pid"); print "$pid\n";
  # device:inode of every mount source and of every API socket and the directories above it,
  # as root sees them: a hard link or another path to a socket is the same inode
  section("mount-ids");
  my %src; for my $d (@docs) { $src{$1} = 1 while $d =~ /"Source":"((?:[^"\\]|\\.)*)"/g }
  for my $p (sort keys %src) { my @s = stat($p); print "$s[0]:$s[1] $p\n" if @s }
  section("socket-ids");
  (my $rt = $sock) =~ s{/docker\.sock\z}{};
  for my $p ($sock, "$rt/docker/containerd/containerd.sock", "/run/docker.sock", "/var/run/docker.sock",
             "/run/containerd/containerd.sock", "/var/run/containerd/containerd.sock") {
    my $q = $p;
    while ($q ne "") { my @s = stat($q); print "$s[0]:$s[1] $q\n" if @s; $q =~ s{/[^/]*\z}{}; }
  }
  my @r = stat("/"); print "$r[0]:$r[1] /\n" if @r;
}
($code, $body) = get("/networks");
section("networks"); print(($code == 200 ? $body : "docker network ls failed: $body"), "\n");
`;

/**
 * The same facts through the docker CLI, as the user (for hosts without perl). Root prints the
 * section lines itself: the marker never reaches a process of the user's, which could read it
 * (its command line, its environment) and forge sections.
 */
const DOCKER_API_CLI = String.raw`dk() { as_user "$user" timeout 30 docker "$@" 2>&1 | head -c ${DOCKER_API_LIMITS.bytes}; return "${"$"}{PIPESTATUS[0]}"; }
s docker-info; dk info --format '{{json .}}'; echo "exit=$?"
ids=$(dk ps -aq --no-trunc); rc=$?
s containers
# shellcheck disable=SC2086 # $ids: hex ids (checked), one word each
if [ "$rc" != 0 ] || ! [[ $ids =~ ^[0-9a-f[:space:]]*$ ]]; then echo "docker ps failed: $ids"
elif [ -n "$ids" ]; then dk inspect $ids; else echo "[]"; fi
nets=$(dk network ls -q --no-trunc); rc=$?
s networks
# shellcheck disable=SC2086 # $nets: hex ids (checked), one word each
if [ "$rc" != 0 ] || ! [[ $nets =~ ^[0-9a-f[:space:]]*$ ]]; then echo "docker network ls failed: $nets"
elif [ -n "$nets" ]; then dk network inspect $nets; else echo "[]"; fi
s proxy-pid
if [ -n "$1" ]; then dk inspect -f '{{.State.Pid}}' "$1" | grep -xE '[0-9]+' || echo 0; else echo 0; fi`;

/**
 * The part of `read_docker UID PROXY SUBUIDS` that reads the user's Docker API: prints its
 * sections and leaves the proxy container's pid in `pid` ("" when there is none). Perl when
 * `dockerClient` allows it and the host has it, else the docker CLI as the user.
 */
export function dockerApiRead(dockerClient: "auto" | "perl" | "cli" | undefined): string {
  const perlFirst = { auto: "command -v perl >/dev/null", perl: "true", cli: "false" }[
    dockerClient ?? "auto"
  ];
  return String.raw`  if ${perlFirst}; then
    # the marker in perl's environment (readable by root only), never on its command line
    out=$(U=$1 P=$P M=$M perl -e ${shellQuote(DOCKER_API_PERL)} "/run/user/$1/docker.sock" "$2" 2>&1)
  else
    out=$(cli() { ${DOCKER_API_CLI}
    }; cli "$2")
  fi
  printf '%s\n' "$out"
  lit="$M ${"$"}{P}proxy-pid"$'\n'
  if [[ $out == *"$lit"* ]]; then pid=${"$"}{out#*"$lit"}; pid=${"$"}{pid%%$'\n'*}; fi
  [[ $pid =~ ^[0-9]+$ ]] || pid=""
`;
}
