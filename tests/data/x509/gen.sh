#!/bin/sh
# Makes the gen-*.der certificates (see SOURCES.md) with the openssl CLI: key types and name
# shapes the captures lack. Not run by the tests; the DER files are committed.
set -e
out=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
mk() { # name keyspec subject [extra req args...]
    name=$1 spec=$2 subj=$3
    shift 3
    openssl genpkey $spec -out k.pem 2>/dev/null
    openssl req -x509 -new -key k.pem -subj "$subj" -outform DER -out "$out/gen-$name.der" "$@"
}
mk ed25519 "-algorithm ed25519" "/CN=ed25519.example" -days 30 -addext "subjectAltName=DNS:a.example,DNS:b.example"
mk ed448 "-algorithm ed448" "/CN=ed448.example" -days 30
mk p384 "-algorithm EC -pkeyopt ec_paramgen_curve:P-384" "/C=DE/O=Org, Inc./CN=p384.example" -days 30 -sha384
mk p521 "-algorithm EC -pkeyopt ec_paramgen_curve:P-521" "/CN=p521.example" -days 30 -sha512
mk secp256k1 "-algorithm EC -pkeyopt ec_paramgen_curve:secp256k1" "/CN=k1.example" -days 30
mk rsa1024 "-algorithm RSA -pkeyopt rsa_keygen_bits:1024" "/CN=rsa1024.example/emailAddress=a@b.example" -days 30
mk rsa3072 "-algorithm RSA -pkeyopt rsa_keygen_bits:3072" "/DC=com/DC=example/UID=u1/CN=dc.example" -days 30
mk rsapss "-algorithm RSA-PSS -pkeyopt rsa_keygen_bits:2048" "/CN=pss.example" -days 30
mk gentime "-algorithm EC -pkeyopt ec_paramgen_curve:P-256" "/CN=2060.example" -days 15000
mk escapes "-algorithm EC -pkeyopt ec_paramgen_curve:P-256" "/CN=#lead\\, comma\\+plus;semi<lt>gt\"q\\\\bs trail /O= lead space/OU=#/L= " -days 30 -addext "subjectAltName=DNS:x.example,IP:10.0.0.1,email:m@x.example,URI:https://x.example/,DNS:y.example"
mk multirdn "-algorithm EC -pkeyopt ec_paramgen_curve:P-256" "/O=Multi/CN=first+serialNumber=12345+OU=unit" -multivalue-rdn -days 30
mk utf8 "-algorithm EC -pkeyopt ec_paramgen_curve:P-256" "/CN=Zürich.example/O=Пример" -utf8 -days 30
mk ctrl "-algorithm EC -pkeyopt ec_paramgen_curve:P-256" "/CN=tab	in/O=del" -days 30
mk unknownattr "-algorithm EC -pkeyopt ec_paramgen_curve:P-256" "/houseIdentifier=h1/CN=u.example" -days 30
mk manysan "-algorithm EC -pkeyopt ec_paramgen_curve:P-256" "/CN=many.example" -days 30 -addext "subjectAltName=$(i=0; s=''; while [ $i -lt 40 ]; do s="${s}DNS:host$i.a-fairly-long-domain-name.example,"; i=$((i+1)); done; echo "${s%,}")"
mk othername "-algorithm EC -pkeyopt ec_paramgen_curve:P-256" "/CN=on.example" -days 30 -addext "subjectAltName=otherName:1.3.6.1.4.1.311.20.2.3;UTF8:u@x.example,DNS:on.example"
mk longname "-algorithm EC -pkeyopt ec_paramgen_curve:P-256" "/O=$(printf 'x%.0s' $(seq 1 60))/OU=$(printf 'y%.0s' $(seq 1 60))/L=$(printf 'z%.0s' $(seq 1 60))/ST=$(printf 'w%.0s' $(seq 1 60))/CN=long.example" -days 30
openssl req -x509 -new -key k.pem -subj "/CN=serial.example" -set_serial 0x00ffeeddccbbaa99887766554433221100 -outform DER -out "$out/gen-bigserial.der" -days 30
openssl req -x509 -new -key k.pem -subj "/CN=serial0.example" -set_serial 0 -outform DER -out "$out/gen-serial0.der" -days 30
