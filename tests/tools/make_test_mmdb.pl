#!/usr/bin/perl
# Builds the two tiny MaxMind DB files the geo tests and the golden captures use:
#   spanprint-test-city.mmdb  (database_type "Spanprint-Test-City", GeoLite2-City layout)
#   spanprint-test-asn.mmdb   (database_type "Spanprint-Test-ASN", GeoLite2-ASN layout)
# Usage: perl tests/tools/make_test_mmdb.pl [OUTDIR]   (default tests/data/geo)
# Needs Debian's libmaxmind-db-writer-perl. The build epoch is fixed, so the output is
# byte-for-byte reproducible; rerun after editing @networks and commit both files.
#
# The records are ILLUSTRATIVE test data, not authoritative: the public server addresses that
# appear in the JA4 captures (tests use /work/shared/data/ja4/pcap) are mapped to the country
# and AS of the network's well-known operator, and the documentation ranges (RFC 5737,
# RFC 3849) to made-up places with documentation AS numbers (RFC 5398). The sensor marks
# documentation addresses as scope "documentation" and only looks them up when told to
# (sn_geo_set_lookup_all), so synthetic captures can use them.
use strict;
use warnings;
use MaxMind::DB::Writer::Tree;

my $outdir = shift // 'tests/data/geo';
my $EPOCH  = 1767225600;    # 2026-01-01T00:00:00Z

# network, country, continent, city (or ''), asn, as organisation
my @networks = (
    # from ja4/pcap captures
    [ '54.160.114.0/24',        'US', 'NA', 'Ashburn',   14618, 'AMAZON-AES' ],
    [ '54.190.49.0/24',         'US', 'NA', 'Boardman',  16509, 'AMAZON-02' ],
    [ '34.212.93.0/24',         'US', 'NA', 'Boardman',  16509, 'AMAZON-02' ],
    [ '35.165.254.0/24',        'US', 'NA', 'Boardman',  16509, 'AMAZON-02' ],
    [ '34.248.242.0/24',        'IE', 'EU', 'Dublin',    16509, 'AMAZON-02' ],
    [ '52.215.161.0/24',        'IE', 'EU', 'Dublin',    16509, 'AMAZON-02' ],
    [ '104.21.234.0/24',        'US', 'NA', '',          13335, 'CLOUDFLARENET' ],
    [ '172.67.24.0/24',         'US', 'NA', '',          13335, 'CLOUDFLARENET' ],
    [ '104.17.24.0/24',         'US', 'NA', '',          13335, 'CLOUDFLARENET' ],
    [ '2606:4700:10::/48',      'US', 'NA', '',          13335, 'CLOUDFLARENET' ],
    [ '142.250.66.0/24',        'US', 'NA', '',          15169, 'GOOGLE' ],
    [ '142.250.204.0/24',       'US', 'NA', '',          15169, 'GOOGLE' ],
    [ '142.251.111.0/24',       'US', 'NA', '',          15169, 'GOOGLE' ],
    [ '172.217.25.0/24',        'US', 'NA', '',          15169, 'GOOGLE' ],
    [ '172.253.122.0/24',       'US', 'NA', '',          15169, 'GOOGLE' ],
    [ '13.107.21.0/24',         'US', 'NA', '',          8075,  'MICROSOFT-CORP-MSN-AS-BLOCK' ],
    [ '52.96.181.0/24',         'US', 'NA', '',          8075,  'MICROSOFT-CORP-MSN-AS-BLOCK' ],
    [ '157.240.229.0/24',       'US', 'NA', '',          32934, 'FACEBOOK' ],
    [ '151.101.1.0/24',         'US', 'NA', '',          54113, 'FASTLY' ],
    [ '23.62.168.0/24',         'US', 'NA', '',          20940, 'Akamai International B.V.' ],
    [ '192.30.252.0/24',        'US', 'NA', '',          36459, 'GITHUB' ],
    # documentation ranges (seen only with lookup-all)
    [ '192.0.2.0/24',           'DE', 'EU', 'Berlin',    64496, 'Spanprint Test Net 1' ],
    [ '198.51.100.0/24',        'FR', 'EU', 'Paris',     64497, 'Spanprint Test Net 2' ],
    [ '203.0.113.0/24',         'JP', 'AS', 'Tokyo',     64498, 'Spanprint Test Net 3' ],
    [ '2001:db8::/32',          'SE', 'EU', 'Stockholm', 64499, 'Spanprint Test Net 6' ],
    # over-long UTF-8 names (2- and 3-byte characters) to test truncation on a character
    # boundary; the upper half of TEST-NET-3
    [ '203.0.113.128/25',       'ES', 'EU', "\x{d1}" x 40, 64500, "\x{20ac}" x 40 ],
);

my %types = (
    city                           => 'map',
    continent                      => 'map',
    country                        => 'map',
    code                           => 'utf8_string',
    iso_code                       => 'utf8_string',
    names                          => 'map',
    en                             => 'utf8_string',
    autonomous_system_number       => 'uint32',
    autonomous_system_organization => 'utf8_string',
);

sub tree {
    my ($type) = @_;
    my $t = MaxMind::DB::Writer::Tree->new(
        ip_version               => 6,
        record_size              => 24,
        database_type            => $type,
        languages                => ['en'],
        description              => { en => "Spanprint test data ($type), not real" },
        map_key_type_callback    => sub { $types{ $_[0] } },
        alias_ipv6_to_ipv4       => 1,
        remove_reserved_networks => 0,
    );
    $t->_set_build_epoch($EPOCH);
    return $t;
}

my $city = tree('Spanprint-Test-City');
my $asn  = tree('Spanprint-Test-ASN');
for my $n (@networks) {
    my ( $net, $cc, $cont, $name, $as, $org ) = @$n;
    my %rec = (
        continent => { code     => $cont },
        country   => { iso_code => $cc },
    );
    $rec{city} = { names => { en => $name } } if $name ne '';
    $city->insert_network( $net, \%rec );
    $asn->insert_network( $net,
        { autonomous_system_number => $as, autonomous_system_organization => $org } );
}

for ( [ $city, 'spanprint-test-city.mmdb' ], [ $asn, 'spanprint-test-asn.mmdb' ] ) {
    my ( $t, $file ) = @$_;
    open my $fh, '>:raw', "$outdir/$file" or die "$outdir/$file: $!";
    $t->write_tree($fh);
    close $fh or die "$outdir/$file: $!";
}
