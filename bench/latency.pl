#!/usr/bin/perl
# Latency of GET /containers/json, straight to the Docker socket vs through the socket proxy,
# measured side by side (alternating, same client, same moment). Runs inside a container on
# the proxy's network with the socket mounted (see proxy-latency.sh). perl-base only: no
# Time::HiRes, so the clock is clock_gettime(CLOCK_MONOTONIC) through syscall (x86_64).
# Usage: perl latency.pl REQUESTS [PROXY_HOST] [PROXY_PORT] [SOCKET]
use strict;
use warnings;
use IO::Socket::INET;
use IO::Socket::UNIX;
use Socket qw(SOCK_STREAM);

my ($n, $phost, $pport, $sock) = @ARGV;
$n //= 1000; $phost //= 'socket-proxy'; $pport //= 2375; $sock //= '/var/run/docker.sock';
my $path = '/v1.41/containers/json';

sub now_us {    # CLOCK_MONOTONIC in microseconds
  my $ts = pack('q2', 0, 0);
  syscall(228, 1, $ts) == 0 or die "clock_gettime: $!";
  my ($s, $ns) = unpack('q2', $ts);
  return $s * 1e6 + $ns / 1e3;
}

sub read_response {    # status; reads exactly one response (Content-Length or chunked)
  my ($c) = @_;
  my $status = <$c> // die "connection closed";
  my ($code) = $status =~ m{^HTTP/1\.[01] (\d{3})} or die "bad status line: $status";
  my ($len, $chunked) = (undef, 0);
  while (my $h = <$c>) {
    last if $h eq "\r\n";
    $len = $1 if $h =~ /^content-length:\s*(\d+)/i;
    $chunked = 1 if $h =~ /^transfer-encoding:\s*chunked/i;
  }
  my $buf;
  if ($chunked) {
    while (1) {
      my $line = <$c> // die "eof in chunk";
      $line =~ s/[;\s].*//s;
      my $size = hex($line);
      read($c, $buf, $size + 2) if $size;
      if (!$size) { <$c>; last }
    }
  } elsif (defined $len) {
    read($c, $buf, $len);
  }
  return $code;
}

my %conn;
sub connection {
  my ($kind) = @_;
  return $conn{$kind} //= $kind eq 'direct'
    ? IO::Socket::UNIX->new(Peer => $sock, Type => SOCK_STREAM) || die "unix $sock: $!"
    : IO::Socket::INET->new(PeerAddr => $phost, PeerPort => $pport, Proto => 'tcp') || die "tcp $phost:$pport: $!";
}

sub one {    # one request on a kept-alive connection (what Traefik's client does)
  my ($kind) = @_;
  my $c = connection($kind);
  my $t0 = now_us();
  print $c "GET $path HTTP/1.1\r\nHost: docker\r\nUser-Agent: hd-bench\r\n\r\n";
  my $code = read_response($c);
  my $dt = now_us() - $t0;
  die "$kind: HTTP $code\n" unless $code == 200;
  return $dt;
}

$| = 1;
one($_) for (('direct', 'proxy') x 20);    # warm up both paths
my (@direct, @proxy);
for my $i (1 .. $n) {                         # alternate the order to cancel drift
  if ($i % 2) { push @direct, one('direct'); push @proxy, one('proxy') }
  else        { push @proxy, one('proxy');   push @direct, one('direct') }
}
sub pct { my ($p, @v) = @_; @v = sort { $a <=> $b } @v; return $v[int($p / 100 * $#v + 0.5)] }
my %r;
for (['direct', \@direct], ['proxy', \@proxy]) {
  my ($k, $v) = @$_;
  $r{$k} = { p50 => pct(50, @$v), p99 => pct(99, @$v) };
  printf "%-7s n=%d p50 %.0f us  p99 %.0f us\n", $k, scalar(@$v), $r{$k}{p50}, $r{$k}{p99};
}
printf "ratio p50 %.2f  p99 %.2f  (proxy / direct)\n", $r{proxy}{p50} / $r{direct}{p50}, $r{proxy}{p99} / $r{direct}{p99};
