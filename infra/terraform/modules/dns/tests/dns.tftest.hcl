# A name with its certificate, as planned (mocked AWS). moto plans and applies these resources but
# issues no real certificate: that ACM sees the validation record and issues one only a real
# account and a delegated public zone show.

mock_provider "aws" {
  mock_resource "aws_acm_certificate" {
    defaults = {
      arn = "arn:aws:acm:eu-west-1:123456789012:certificate/issued"
      domain_validation_options = [{
        domain_name           = "api.production.ml.example.com"
        resource_record_name  = "_x1.api.production.ml.example.com."
        resource_record_type  = "CNAME"
        resource_record_value = "_x2.acm-validations.aws."
      }]
    }
  }
}

variables {
  name            = "api.production.ml.example.com"
  zone_id         = "Z0123456789EXAMPLE"
  target_dns_name = "credit-risk-production-api-123.eu-west-1.elb.amazonaws.com"
  target_zone_id  = "Z32O12XQLNTSW2"
}

run "the_name_gets_a_dns_validated_certificate_and_an_alias" {
  command = apply

  assert {
    condition     = aws_acm_certificate.this[0].domain_name == "api.production.ml.example.com" && aws_acm_certificate.this[0].validation_method == "DNS"
    error_message = "the certificate names the DNS name and is validated through DNS"
  }

  assert {
    condition     = aws_route53_record.validation["api.production.ml.example.com"].name == "_x1.api.production.ml.example.com." && aws_route53_record.validation["api.production.ml.example.com"].records == toset(["_x2.acm-validations.aws."]) && aws_route53_record.validation["api.production.ml.example.com"].zone_id == "Z0123456789EXAMPLE"
    error_message = "ACM's validation record goes into the zone"
  }

  assert {
    condition     = aws_acm_certificate_validation.this[0].certificate_arn == aws_acm_certificate.this[0].arn
    error_message = "the listener waits for the validated certificate"
  }

  assert {
    condition     = output.certificate_arn == "arn:aws:acm:eu-west-1:123456789012:certificate/issued"
    error_message = "certificate_arn is the validated certificate"
  }

  assert {
    condition     = aws_route53_record.alias["A"].alias[0].name == var.target_dns_name && aws_route53_record.alias["AAAA"].alias[0].zone_id == var.target_zone_id
    error_message = "the name is an alias (A and AAAA) to the load balancer"
  }

  assert {
    condition     = output.url == "https://api.production.ml.example.com"
    error_message = "clients use https://<name>"
  }
}

run "a_given_certificate_is_used_and_none_is_requested" {
  command = plan

  variables {
    certificate_arn = "arn:aws:acm:eu-west-1:123456789012:certificate/wildcard"
  }

  assert {
    condition     = length(aws_acm_certificate.this) == 0 && length(aws_route53_record.validation) == 0
    error_message = "no certificate is requested when one is given"
  }

  assert {
    condition     = output.certificate_arn == "arn:aws:acm:eu-west-1:123456789012:certificate/wildcard"
    error_message = "the given certificate is the listener's"
  }
}

run "a_load_balancer_name_is_refused" {
  command = plan

  variables {
    name = "Not A Name"
  }

  expect_failures = [var.name]
}
